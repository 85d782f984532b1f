// The phone a supervisor listens, whispers and barges in with: the browser softphone (the
// agent workspace's own JsSIP user agent, registered as the supervisor's agent extension) or
// a phone by SIP address / the registered one. The node rings the chosen phone while the
// monitor request is pending (contacts/devices.py decides what it may ring); the browser
// answers that call by itself, since the supervisor just asked for it.
import { Alert, Badge, Button, Group, PasswordInput, Radio, Stack, TextInput } from "@mantine/core";
import { useEffect, useMemo, useReducer, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
// eslint-disable-next-line no-restricted-imports -- the one softphone of the app, reused rather than forked
import { MicrophoneRefused, Softphone } from "../agent/softphone";
import { api, call } from "../shared/api/client";

export type MonitorKind = "browser" | "phone";

interface Webphone {
  ws_url: string | null;
  sip_domain: string;
  extension: string;
}

export interface MonitorPhone {
  /** The device to send with a monitor request; throws when the browser is not connected. */
  device(): string | null;
  /** Run a monitor request, answering the browser's ringing call while it is pending. */
  expect<T>(request: () => Promise<T>): Promise<T>;
}

export function useMonitorPhone(): { phone: MonitorPhone; panel: React.ReactNode } {
  const { t } = useTranslation();
  const softphone = useMemo(() => new Softphone(), []);
  const [, changed] = useReducer((n: number) => n + 1, 0);
  const [webphone, setWebphone] = useState<Webphone | null | undefined>(undefined);
  const [kind, setKind] = useState<MonitorKind>("phone");
  const [sip, setSip] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const expecting = useRef(0);

  useEffect(() => {
    const off = softphone.subscribe(() => {
      if (softphone.ringing && expecting.current > 0) softphone.answer();
      changed();
    });
    return () => {
      off();
      softphone.stop();
    };
  }, [softphone]);

  useEffect(() => {
    // Only an agent seat has an extension to register the softphone as (404 otherwise).
    call(api.GET("/api/v1/webphone")).then(
      (w) => setWebphone(w.ws_url ? w : null),
      () => setWebphone(null),
    );
  }, []);

  async function connect() {
    if (!webphone?.ws_url) return;
    setBusy(true);
    setError(null);
    try {
      await Softphone.checkMicrophone();
      await softphone.register({ wsUrl: webphone.ws_url, domain: webphone.sip_domain, extension: webphone.extension, password });
    } catch (e) {
      softphone.stop();
      setError(e instanceof MicrophoneRefused ? t("agent.device.micRefused") : t("supervisor.browserFailed", { detail: e instanceof Error ? e.message : String(e) }));
    } finally {
      setBusy(false);
    }
  }

  const phone: MonitorPhone = {
    device() {
      if (kind === "phone") return sip.trim() || null;
      if (!webphone || !softphone.registered) throw new Error(t("supervisor.browserNotConnected"));
      return `sip:${webphone.extension}@${webphone.sip_domain}`;
    },
    async expect(request) {
      expecting.current += 1;
      try {
        return await request();
      } finally {
        expecting.current -= 1;
      }
    },
  };

  const inCall = !!softphone.session && softphone.session.isEstablished();
  const panel = (
    <Stack gap="xs" mb="sm" maw={560} data-testid="monitor-phone">
      <Radio.Group label={t("supervisor.monitorWith")} value={kind} onChange={(v) => setKind(v as MonitorKind)}>
        <Group mt="xs">
          <Radio value="browser" label={t("supervisor.monitorBrowser")} disabled={!webphone} />
          <Radio value="phone" label={t("supervisor.monitorPhone")} />
        </Group>
      </Radio.Group>
      {webphone === null && <Alert color="gray">{t("supervisor.noBrowser")}</Alert>}
      {kind === "phone" && <TextInput label={t("supervisor.myPhone")} name="monitor-device" value={sip} onChange={(e) => setSip(e.currentTarget.value)} />}
      {kind === "browser" && webphone && (
        <Group align="end">
          {!softphone.registered && (
            <>
              <PasswordInput label={t("agent.device.sipPassword", { extension: webphone.extension })} name="monitor-sip-password" value={password} onChange={(e) => setPassword(e.currentTarget.value)} />
              <Button loading={busy} onClick={() => void connect()}>
                {t("supervisor.connect")}
              </Button>
            </>
          )}
          {softphone.registered && (
            <>
              <Badge color={inCall ? "red" : "teal"} data-testid="monitor-browser-state" data-in-call={inCall}>
                {inCall ? t("supervisor.browserInCall") : t("supervisor.browserReady", { extension: webphone.extension })}
              </Badge>
              <Button size="compact-sm" variant="default" onClick={() => softphone.stop()}>
                {t("supervisor.disconnect")}
              </Button>
            </>
          )}
        </Group>
      )}
      {error && (
        <Alert color="red" role="alert">
          {error}
        </Alert>
      )}
    </Stack>
  );
  return { phone, panel };
}
