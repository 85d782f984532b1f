// A recording made in the page (MediaRecorder gives Opus in WebM) as the WAV the prompts API
// takes: 16-bit PCM mono at the capture rate (the node converts it to 8 kHz). RIFF/WAVE layout
// as in the Microsoft multimedia spec: RIFF header, "fmt " (PCM, tag 1), "data".
export function encodeWav(samples: Float32Array, rate: number): ArrayBuffer {
  const data = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (at: number, s: string) => [...s].forEach((c, i) => data.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  data.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  data.setUint32(16, 16, true);
  data.setUint16(20, 1, true); // PCM
  data.setUint16(22, 1, true); // mono
  data.setUint32(24, rate, true);
  data.setUint32(28, rate * 2, true); // bytes per second
  data.setUint16(32, 2, true); // block align
  data.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  data.setUint32(40, samples.length * 2, true);
  samples.forEach((v, i) => data.setInt16(44 + i * 2, Math.round(Math.max(-1, Math.min(1, v)) * 32767), true));
  return data.buffer;
}

/** Decode what MediaRecorder produced and mix it down to mono WAV. */
export async function toWav(recorded: Blob): Promise<Blob> {
  const context = new AudioContext();
  try {
    const buffer = await context.decodeAudioData(await recorded.arrayBuffer());
    const mono = new Float32Array(buffer.length);
    for (let c = 0; c < buffer.numberOfChannels; c++) {
      const channel = buffer.getChannelData(c);
      for (let i = 0; i < mono.length; i++) mono[i] = (mono[i] ?? 0) + (channel[i] ?? 0) / buffer.numberOfChannels;
    }
    return new Blob([encodeWav(mono, buffer.sampleRate)], { type: "audio/wav" });
  } finally {
    void context.close();
  }
}
