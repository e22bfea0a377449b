// Audio: text to speech (play and download), speech to text from a file or the microphone, and
// sound generation. Each panel lives in js/audio/; what they made stays while this tab lives.
import { html } from "htm/preact";
import { SoundPanel } from "../audio/sound.js";
import { SpeechPanel } from "../audio/speech.js";
import { TranscribePanel } from "../audio/transcribe.js";
import { PageHeader } from "../ui/widgets.js";

export default function AudioPage() {
  return html`<${PageHeader} title="Audio" />
    <div class="audio-panels">
      <${SpeechPanel} />
      <${TranscribePanel} />
      <${SoundPanel} />
    </div>`;
}
