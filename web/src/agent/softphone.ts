// The browser softphone: JsSIP, SIP over (secure) WebSocket to the node's own SIP stack
// (RFC 7118), registered as the agent's extension, so the node rings it like any SIP phone
// and the browser leg is a leg like any other (hold, transfer, monitor, recording).
// WebRTC media terminates in the node (ICE-lite, DTLS-SRTP; docs/web.md).
import { UA, WebSocketInterface } from "jssip";
import type { RTCSession } from "jssip/lib/RTCSession";

export interface SoftphoneConfig {
  wsUrl: string;
  domain: string;
  extension: string;
  password: string;
}

type Listener = () => void;

// A short network drop: after this long "disconnected" (at once when "failed"), the page
// restarts ICE (RFC 8445 §9): a re-INVITE whose offer has new ice-ufrag/ice-pwd (RFC 8839
// §4.4.1.1.2); the node answers with new credentials of its own and keeps DTLS-SRTP.
const ICE_RESTART_AFTER_MS = 1000;
// While the connection is not back, the restart is tried again this often.
const ICE_RESTART_RETRY_MS = 4000;

export class MicrophoneRefused extends Error {}

export class Softphone {
  private ua: UA | null = null;
  session: RTCSession | null = null;
  registered = false;
  private listeners = new Set<Listener>();
  private audio = new Audio();

  constructor() {
    this.audio.autoplay = true;
  }

  subscribe = (l: Listener) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };

  private changed() {
    this.listeners.forEach((l) => l());
  }

  /** How many ICE restarts this page asked for (shown nowhere; read by tests and logs). */
  iceRestarts = 0;

  private watchIce(session: RTCSession, pc: RTCPeerConnection) {
    let timer: number | undefined;
    const down = () => pc.iceConnectionState === "disconnected" || pc.iceConnectionState === "failed";
    const restart = () => {
      timer = undefined;
      if (session.isEnded() || !down()) return;
      // false while another offer/answer is in progress: tried again below
      const sent = session.isEstablished() && session.renegotiate({ rtcOfferConstraints: { iceRestart: true } });
      if (sent) this.iceRestarts += 1;
      timer = window.setTimeout(restart, sent ? ICE_RESTART_RETRY_MS : ICE_RESTART_AFTER_MS);
    };
    pc.addEventListener("iceconnectionstatechange", () => {
      if (down()) {
        if (timer === undefined) {
          timer = window.setTimeout(restart, pc.iceConnectionState === "failed" ? 0 : ICE_RESTART_AFTER_MS);
        }
      } else if (timer !== undefined) {
        window.clearTimeout(timer);
        timer = undefined;
      }
    });
    session.on("ended", () => window.clearTimeout(timer));
    session.on("failed", () => window.clearTimeout(timer));
  }

  /** Ask for the microphone first: without it the agent cannot go ready on this device. */
  static async checkMicrophone(): Promise<void> {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      stream.getTracks().forEach((t) => t.stop());
    } catch (e) {
      throw new MicrophoneRefused(String(e));
    }
  }

  register(config: SoftphoneConfig): Promise<void> {
    this.stop();
    const ua = new UA({
      sockets: [new WebSocketInterface(config.wsUrl)],
      uri: `sip:${config.extension}@${config.domain}`,
      password: config.password,
      register: true,
      session_timers: false,
    });
    this.ua = ua;
    ua.on("newRTCSession", ({ session, originator }: { session: RTCSession; originator: string }) => {
      this.session = session;
      session.on("peerconnection", ({ peerconnection }) => {
        peerconnection.addEventListener("track", (ev: RTCTrackEvent) => {
          this.audio.srcObject = ev.streams[0] ?? new MediaStream([ev.track]);
        });
        this.watchIce(session, peerconnection);
      });
      const end = () => {
        if (this.session === session) this.session = null;
        this.changed();
      };
      session.on("ended", end);
      session.on("failed", end);
      session.on("confirmed", () => this.changed());
      if (originator === "remote") this.changed();
    });
    return new Promise((resolve, reject) => {
      ua.on("registered", () => {
        this.registered = true;
        this.changed();
        resolve();
      });
      ua.on("registrationFailed", (e: { cause?: string }) => {
        this.registered = false;
        this.changed();
        reject(new Error(e.cause ?? "registration failed"));
      });
      ua.on("unregistered", () => {
        this.registered = false;
        this.changed();
      });
      ua.start();
    });
  }

  get ringing(): boolean {
    return !!this.session && this.session.direction === "incoming" && !this.session.isEstablished() && !this.session.isEnded();
  }

  answer(): void {
    this.session?.answer({ mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: [] } });
  }

  decline(): void {
    // 486 Busy Here (RFC 3261 §21.4.7): the node offers the contact to another agent.
    this.session?.terminate({ status_code: 486 });
  }

  stop(): void {
    this.ua?.stop();
    this.ua = null;
    this.session = null;
    this.registered = false;
    this.changed();
  }
}
