import { Alert, Button, Paper, PasswordInput, Radio, Stack, Switch, TextInput, Title } from "@mantine/core";
import { useEffect, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { api, ApiProblem, call } from "../shared/api/client";
import { can, useSession } from "../shared/auth/session";
import { MicrophoneRefused, Softphone } from "./softphone";

export type DeviceKind = "browser" | "phone" | "sip";

export function DeviceSignIn({ softphone, onSignedIn }: { softphone: Softphone; onSignedIn: (kind: DeviceKind, since: number) => void }) {
  const { t } = useTranslation();
  const { me } = useSession();
  // Any SIP address only with agents:device; others use the softphone, a phone registered as
  // their extension, or the device an admin assigned them (the API refuses the rest).
  const anyDevice = can(me, "agents:device");
  const [wsUrl, setWsUrl] = useState<string | null | undefined>(undefined);
  const [domain, setDomain] = useState("");
  const [extension, setExtension] = useState("");
  const [kind, setKind] = useState<DeviceKind>("browser");
  const [sip, setSip] = useState("");
  const [password, setPassword] = useState("");
  const [ready, setReady] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    call(api.GET("/api/v1/webphone"))
      .then((w) => {
        setWsUrl(w.ws_url);
        setDomain(w.sip_domain);
        setExtension(w.extension);
        if (!w.ws_url) setKind("phone");
      })
      .catch(() => setWsUrl(null));
  }, []);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (kind === "browser") {
        await Softphone.checkMicrophone();
        await softphone.register({ wsUrl: wsUrl!, domain, extension, password });
      }
      // The browser and a registered phone are both "the agent's registered phone".
      // A second tab or device takes over (the first is told "replaced"); the open event
      // stream keeps the session alive, and its loss for a minute signs the agent out.
      const device = kind === "sip" ? sip : null;
      const status = await call(api.POST("/api/v1/agents/{agent_id}/login", { params: { path: { agent_id: "me" } }, body: { device, ready, replace: true, heartbeat_seconds: 60 } }));
      onSignedIn(kind, status.since);
    } catch (e) {
      if (kind === "browser") softphone.stop();
      setError(e instanceof MicrophoneRefused ? t("agent.device.micRefused") : e instanceof ApiProblem ? e.detail : String(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Paper withBorder p="lg" maw={520}>
      <form onSubmit={submit} aria-labelledby="device-title">
        <Stack>
          <Title order={3} id="device-title">
            {t("agent.device.title")}
          </Title>
          {error && (
            <Alert color="red" role="alert">
              {error}
            </Alert>
          )}
          <Radio.Group label={t("agent.device.label")} value={kind} onChange={(v) => setKind(v as DeviceKind)}>
            <Stack gap="xs" mt="xs">
              <Radio value="browser" label={t("agent.device.browser")} disabled={!wsUrl} />
              <Radio value="phone" label={t("agent.device.phone")} />
              {anyDevice && <Radio value="sip" label={t("agent.device.sip")} />}
            </Stack>
          </Radio.Group>
          {wsUrl === null && <Alert color="gray">{t("agent.device.noBrowser")}</Alert>}
          {kind === "browser" && (
            <PasswordInput label={t("agent.device.sipPassword")} name="sip-password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.currentTarget.value)} />
          )}
          {kind === "sip" && (
            <TextInput label={t("agent.device.sipAddress")} name="sip-address" placeholder="sip:me@192.0.2.10:5060" required value={sip} onChange={(e) => setSip(e.currentTarget.value)} />
          )}
          <Switch label={t("agent.device.startReady")} checked={ready} onChange={(e) => setReady(e.currentTarget.checked)} />
          <Button type="submit" loading={busy}>
            {t("agent.device.submit")}
          </Button>
        </Stack>
      </form>
    </Paper>
  );
}
