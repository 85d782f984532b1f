import { Alert, Button, Grid, Stack, Text, Title } from "@mantine/core";
import { useHotkeys } from "@mantine/hooks";
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from "react";
import { useTranslation } from "react-i18next";
import { api, ApiProblem, call } from "../shared/api/client";
import { useSession } from "../shared/auth/session";
import { useStream } from "../shared/events/context";
import { useStreamStatus, type StreamEvent } from "../shared/events/stream";
import { epochSeconds } from "../shared/time";
import { ContactPanel, type ContactActions } from "./ContactPanel";
import { DeviceSignIn, type DeviceKind } from "./DeviceSignIn";
import { Dialler } from "./Dialler";
import { Figures } from "./Figures";
import { ring, notify } from "./ring";
import { Softphone } from "./softphone";
import { StateBar } from "./StateBar";
import { useAgent } from "./useAgent";

const softphone = new Softphone();
const SINCE = "cloudcc.agent.signed-in-at";
// Orange and yellow titles on their light background are below the contrast AA asks for.
const READABLE = { title: { color: "var(--mantine-color-text)" } };

function storedSince(): number | null {
  try {
    const value = Number(sessionStorage.getItem(SINCE));
    return value > 0 ? value : null;
  } catch {
    return null;
  }
}
const ME = { params: { path: { agent_id: "me" } } } as const;

export default function AgentArea() {
  const { t } = useTranslation();
  const { me } = useSession();
  const [error, setError] = useState<string | null>(null);
  const [device, setDevice] = useState<DeviceKind | null>(null);
  const [transferOpen, setTransferOpen] = useState(false);
  useSyncExternalStore(softphone.subscribe, () => softphone.session);

  const onOffer = useCallback(
    (event: StreamEvent) => {
      ring();
      notify(t("agent.contact.notify", { number: String(event.data.customer ?? "") }));
    },
    [t],
  );
  const { pic, refresh, done } = useAgent(me!.agent_id!, onOffer);
  const stream = useStream();
  const streamStatus = useStreamStatus(stream);
  const [wasOpen, setWasOpen] = useState(false);
  // When this tab signed the agent in (kept in sessionStorage, so a reload keeps it and another
  // tab has none): a sign-out after it, by another tab or device, a lost heartbeat or a
  // supervisor, is this tab's, and it says why.
  const [since, setSinceState] = useState<number | null>(storedSince);
  const sinceRef = useRef(since);
  const setSince = useCallback((value: number | null) => {
    sinceRef.current = value;
    setSinceState(value);
    try {
      if (value === null) sessionStorage.removeItem(SINCE);
      else sessionStorage.setItem(SINCE, String(value));
    } catch {
      /* no storage: this tab forgets at reload */
    }
  }, []);
  const [signedOut, setSignedOut] = useState<string | null>(null);
  const [takeOver, setTakeOver] = useState(false);

  useEffect(() => () => softphone.stop(), []);
  useEffect(() => {
    if (streamStatus === "open") setWasOpen(true);
  }, [streamStatus]);
  useEffect(
    () =>
      stream.on("agent.state_changed", (event) => {
        const d = event.data;
        if (d.agent_id !== me!.agent_id || d.state !== "offline" || sinceRef.current === null) return;
        if (epochSeconds(d.at, epochSeconds(event.at, 0)) < sinceRef.current) return;
        setSince(null);
        const reason = typeof d.reason === "string" ? d.reason : "self";
        if (reason === "self") return;
        // Another tab or device took over, the heartbeat was lost, or a supervisor signed us
        // out: this tab stops being the agent's phone and says why.
        softphone.stop();
        setDevice(null);
        setSignedOut(reason);
      }),
    [stream, me, setSince],
  );

  const guard = useCallback(async (action: () => Promise<unknown>): Promise<boolean> => {
    setError(null);
    try {
      await action();
      return true;
    } catch (e) {
      setError(e instanceof ApiProblem ? e.detail : String(e));
      return false;
    }
  }, []);

  const status = pic.status;
  const contacts = Object.values(pic.contacts).sort((a, b) => a.offeredAt - b.offeredAt);
  const current = contacts.find((c) => c.phase === "talking") ?? contacts[0];
  const canAnswer = device === "browser" && softphone.ringing;

  const actions: ContactActions = {
    op: (id, op) => guard(() => call(api.POST(`/api/v1/contacts/{contact_id}/${op}`, { params: { path: { contact_id: id } } }))),
    dtmf: (id, digits) => guard(() => call(api.POST("/api/v1/contacts/{contact_id}/dtmf", { params: { path: { contact_id: id } }, body: { digits } }))),
    transfer: (id, target_type, target) =>
      guard(() => call(api.POST("/api/v1/contacts/{contact_id}/transfer", { params: { path: { contact_id: id } }, body: { target_type, target } }))),
    consult: (id, target_type, target) =>
      guard(() => call(api.POST("/api/v1/contacts/{contact_id}/consult", { params: { path: { contact_id: id } }, body: { target_type, target } }))),
    wrapup: async (id, code, notes) => {
      await call(api.POST("/api/v1/contacts/{contact_id}/wrapup", { params: { path: { contact_id: id } }, body: { code, notes, done: true } }));
      done(id);
      await refresh();
    },
    record: (id, action) => guard(() => call(api.POST("/api/v1/contacts/{contact_id}/record", { params: { path: { contact_id: id } }, body: { action } }))),
    answer: canAnswer ? () => softphone.answer() : undefined,
    decline: canAnswer ? () => softphone.decline() : undefined,
  };

  const setReady = () => guard(() => call(api.PUT("/api/v1/agents/{agent_id}/state", { ...ME, body: { state: "ready" } })).then(refresh));
  const setNotReady = (reason: string) =>
    guard(() => call(api.PUT("/api/v1/agents/{agent_id}/state", { ...ME, body: { state: "not_ready", reason } })).then(refresh));
  const signOut = () =>
    guard(async () => {
      await call(api.POST("/api/v1/agents/{agent_id}/logout", ME));
      softphone.stop();
      setDevice(null);
      await refresh();
    });

  useHotkeys([
    ["alt+A", () => actions.answer?.()],
    ["alt+H", () => current?.phase === "talking" && void actions.op(current.id, current.heldSince ? "unhold" : "hold")],
    ["alt+M", () => current?.phase === "talking" && void actions.op(current.id, current.muted ? "unmute" : "mute")],
    ["alt+T", () => current?.phase === "talking" && !current.consult && setTransferOpen(true)],
    ["alt+X", () => current?.phase === "talking" && void actions.op(current.id, "hangup")],
    ["alt+R", () => void setReady()],
    ["alt+N", () => void setNotReady("busy")],
  ]);

  return (
    <Stack>
      <Title order={2}>{t("area.agent")}</Title>
      {error && (
        <Alert color="red" role="alert" withCloseButton onClose={() => setError(null)}>
          {t("agent.error", { detail: error })}
        </Alert>
      )}
      {wasOpen && streamStatus !== "open" && (
        <Alert color="yellow" role="status" data-testid="reconnecting" title={t("agent.connection.lostTitle")} styles={READABLE}>
          {t("agent.connection.lost")}
        </Alert>
      )}
      {signedOut && (
        <Alert color="orange" role="alert" data-testid="signed-out" title={t("agent.signedOut.title")} styles={READABLE}>
          {t(`agent.signedOut.${signedOut}`, { defaultValue: t("agent.signedOut.other", { reason: signedOut }) })}
        </Alert>
      )}
      {status && status.state !== "offline" && since === null && !signedOut && !takeOver && (
        <Alert color="blue" data-testid="elsewhere" title={t("agent.elsewhere.title")}>
          <Stack gap="xs" align="flex-start">
            <Text size="sm">{t("agent.elsewhere.text")}</Text>
            <Button size="xs" onClick={() => setTakeOver(true)}>
              {t("agent.elsewhere.takeOver")}
            </Button>
          </Stack>
        </Alert>
      )}
      {status && (status.state === "offline" || signedOut || takeOver) && (
        <DeviceSignIn
          softphone={softphone}
          onSignedIn={(kind, at) => {
            setSince(at);
            setTakeOver(false);
            setSignedOut(null);
            setDevice(kind);
            void refresh();
          }}
        />
      )}
      {status && status.state !== "offline" && since !== null && !signedOut && (
        <>
          <StateBar status={status} onReady={setReady} onNotReady={setNotReady} onSignOut={signOut} />
          <Grid>
            <Grid.Col span={{ base: 12, md: 8 }}>
              <Stack>
                {contacts.map((c) => (
                  <ContactPanel key={c.id} contact={c} actions={actions} transferOpen={transferOpen && c === current} setTransferOpen={setTransferOpen} />
                ))}
              </Stack>
            </Grid.Col>
            <Grid.Col span={{ base: 12, md: 4 }}>
              <Stack>
                <Dialler
                  disabled={contacts.some((c) => c.phase !== "wrapup")}
                  onCall={async (to) => {
                    await guard(() => call(api.POST("/api/v1/calls", { body: { to, agent_id: me!.agent_id } })));
                  }}
                />
                <Figures status={status} />
              </Stack>
            </Grid.Col>
          </Grid>
          <Text size="xs">{t("agent.shortcuts")}</Text>
        </>
      )}
    </Stack>
  );
}
