// The microphone: a MediaRecorder over getUserMedia that ends as a File, and the readable reason
// when the browser cannot or will not record (refused, no device, not a secure page).
import { useEffect, useRef, useState } from "preact/hooks";

const TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"];
const MAX_SECONDS = 600; // a recording stops by itself after ten minutes

/** The sentence to show for a getUserMedia / MediaRecorder failure. */
export function microphoneMessage(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return "The microphone was refused. Allow this page to use it (the microphone or lock icon in the "
      + "address bar), or upload a recording instead.";
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
    return "No microphone was found. Connect one, or upload a recording instead.";
  }
  if (name === "NotReadableError" || name === "TrackStartError") {
    return "The microphone could not be started: another application may be using it.";
  }
  return `The microphone could not be started: ${err && err.message ? err.message : err}`;
}

/** Why this browser cannot record here at all, or null when it can try. */
export function recordingUnavailable() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return "This browser offers the microphone only to pages served over HTTPS or from localhost; upload a recording instead.";
  }
  if (typeof MediaRecorder === "undefined") return "This browser cannot record audio; upload a recording instead.";
  return null;
}

/**
 * {state: "idle"|"starting"|"recording", seconds, start(), stop()}. `onDone(file)` gets the recording;
 * `onError(message)` gets why it could not start. Leaving the page stops the microphone.
 */
export function useRecorder({ onDone, onError }) {
  const [state, setState] = useState("idle");
  const [seconds, setSeconds] = useState(0);
  const live = useRef(null); // {recorder, stream, timer, started}

  const release = () => {
    const current = live.current;
    if (!current) return;
    clearInterval(current.timer);
    current.stream.getTracks().forEach((t) => t.stop());
    live.current = null;
  };
  useEffect(() => () => {
    const current = live.current;
    if (current) { current.discard = true; if (current.recorder.state !== "inactive") current.recorder.stop(); }
    release();
  }, []);

  const start = async () => {
    const unavailable = recordingUnavailable();
    if (unavailable) { onError(unavailable); return; }
    setState("starting");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      setState("idle");
      onError(microphoneMessage(err));
      return;
    }
    const type = TYPES.find((t) => MediaRecorder.isTypeSupported(t));
    let recorder;
    try {
      recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    } catch (err) {
      stream.getTracks().forEach((t) => t.stop());
      setState("idle");
      onError(microphoneMessage(err));
      return;
    }
    const chunks = [];
    const current = { recorder, stream, started: performance.now(), discard: false, timer: 0 };
    recorder.ondataavailable = (e) => { if (e.data && e.data.size) chunks.push(e.data); };
    recorder.onstop = () => {
      const kind = (recorder.mimeType || type || "audio/webm").split(";")[0];
      const ext = kind.endsWith("ogg") ? "ogg" : kind.endsWith("mp4") ? "m4a" : "webm";
      const took = (performance.now() - current.started) / 1000;
      release();
      setState("idle");
      if (!current.discard) onDone(new File(chunks, `recording-${Math.floor(Date.now() / 1000)}.${ext}`, { type: kind }), took);
    };
    current.timer = setInterval(() => {
      const elapsed = (performance.now() - current.started) / 1000;
      setSeconds(elapsed);
      if (elapsed >= MAX_SECONDS && recorder.state === "recording") recorder.stop();
    }, 250);
    live.current = current;
    setSeconds(0);
    recorder.start(250);
    setState("recording");
  };

  const stop = () => {
    const current = live.current;
    if (current && current.recorder.state !== "inactive") current.recorder.stop();
  };
  return { state, seconds, start, stop };
}
