// The ring tone (two 440+480 Hz bursts, the North American ring, made with Web Audio: no
// audio file to load) and a browser notification when the page is not in front.
let context: AudioContext | null = null;

export function ring(): void {
  try {
    context ??= new AudioContext();
    const ctx = context;
    for (const start of [0, 0.5]) {
      const gain = ctx.createGain();
      gain.gain.value = 0.08;
      gain.connect(ctx.destination);
      for (const freq of [440, 480]) {
        const osc = ctx.createOscillator();
        osc.frequency.value = freq;
        osc.connect(gain);
        osc.start(ctx.currentTime + start);
        osc.stop(ctx.currentTime + start + 0.4);
      }
    }
  } catch {
    /* no audio output: the pop-up still shows */
  }
}

export function notify(text: string): void {
  if (typeof Notification === "undefined" || document.visibilityState === "visible") return;
  if (Notification.permission === "granted") new Notification(text);
  else if (Notification.permission === "default") void Notification.requestPermission();
}
