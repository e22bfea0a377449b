"""Setting values written as text: durations ('30s', '5m'), sizes ('64GiB'), comma or JSON lists,
LocalAI's gallery JSON, image sizes, listen addresses and API-key files. Pure functions, no settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a Go-style duration ("15m", "1h30m", "500ms", "90s")."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90, '90s', '15m' or '1h'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for match in _DURATION.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"invalid duration {value!r}: use seconds or a duration such as '90s', '15m', '1h30m'"
                ) from None
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(value: Any) -> int:
    """Bytes from a number or a size such as '800MB', '12GiB', '1.5g' (KiB-style units are binary)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as '800MB' or '12GiB'")
    if isinstance(value, int | float):
        size = float(value)
    else:
        match = _SIZE.fullmatch(str(value).strip())
        if not match:
            raise ValueError(f"invalid size {value!r}: use bytes or a size such as '800MB' or '12GiB'")
        number, unit = float(match.group(1)), match.group(2).lower()
        binary = unit.endswith("ib") or unit.endswith("i")
        prefix = unit[:1] if unit[:1] in "kmgt" else ""
        size = number * (1024 ** "_kmgt".index(prefix) if binary and prefix else _SIZE_UNITS[prefix])
    if size <= 0:
        raise ValueError(f"size must be positive, got {value!r}")
    return int(size)


def split_list(value: Any) -> list[str]:
    """A list from a JSON array or a comma-separated string; blanks dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"invalid JSON list: {exc.msg}") from None
        else:
            value = text.split(",")
    if not isinstance(value, list | tuple):
        raise ValueError("expected a comma-separated list")
    items: list[str] = []
    for item in value:
        # LocalAI's preload list holds objects such as {"id": ..., "name": ...}: keep the name.
        if isinstance(item, dict):
            item = item.get("name") or item.get("id") or ""
        item = str(item).strip()
        if item:
            items.append(item)
    return items


def parse_galleries(value: Any) -> list[dict[str, str]]:
    """LocalAI's gallery list: a JSON array of {"name", "url"}; names unique and without '@'."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f'invalid JSON ({exc.msg}); expected [{{"name": "...", "url": "..."}}]') from None
    if not isinstance(value, list | tuple):
        raise ValueError('expected a JSON list such as [{"name": "localai", "url": "github:mudler/LocalAI/gallery/index.yaml@master"}]')
    galleries: list[dict[str, str]] = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else None
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.strip() or not isinstance(url, str) or not url.strip():
            raise ValueError('each gallery needs a "name" and a "url"')
        name, url = name.strip(), url.strip()
        if "@" in name:
            raise ValueError(f"gallery name {name!r} must not contain '@' (it separates gallery and model in ids)")
        if any(g["name"] == name for g in galleries):
            raise ValueError(f"gallery name {name!r} is given twice")
        galleries.append({"name": name, "url": url})
    return galleries


def parse_image_size(text: str) -> tuple[int, int]:
    """(width, height) from 'WIDTHxHEIGHT', each side at least 8 pixels."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match or int(match.group(1)) < 8 or int(match.group(2)) < 8:
        raise ValueError(f"invalid image size {text!r}: use WIDTHxHEIGHT, e.g. '1024x1024'")
    return int(match.group(1)), int(match.group(2))


def parse_address(address: str) -> tuple[str, int]:
    """(host, port) from 'host:port', ':port' (every interface) or '[v6]:port'."""
    text = address.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"invalid address {address!r}: expected host:port, e.g. 127.0.0.1:8080")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid port {port} in address {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return (host or "0.0.0.0"), port


def read_keys_file(path: Path) -> list[str]:
    """API keys from a file: a JSON list, or one key per line with '#' comments."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return split_list(text)
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
