import { Alert, Grid, Stack, Text, Title } from "@mantine/core";
import { useHotkeys } from "@mantine/hooks";
import { useCallback, useEffect, useState, useSyncExternalStore } from "react";
import { useTranslation } from "react-i18next";
import { api, ApiProblem, call } from "../shared/api/client";
import { useSession } from "../shared/auth/session";
import type { StreamEvent } from "../shared/events/stream";
import { ContactPanel, type ContactActions } from "./ContactPanel";
import { DeviceSignIn, type DeviceKind } from "./DeviceSignIn";
import { Dialler } from "./Dialler";
import { ring, notify } from "./ring";
import { Softphone } from "./softphone";
import { StateBar } from "./StateBar";
import { useAgent } from "./useAgent";

const softphone = new Softphone();
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

  useEffect(() => () => softphone.stop(), []);

  const guard = useCallback(
    async (action: () => Promise<unknown>) => {
      setError(null);
      try {
        await action();
      } catch (e) {
        setError(e instanceof ApiProblem ? e.detail : String(e));
      }
    },
    [],
  );

  const status = pic.status;
  const contacts = Object.values(pic.contacts).sort((a, b) => a.offeredAt - b.offeredAt);
  const current = contacts.find((c) => c.phase === "talking") ?? contacts[0];
  const canAnswer = device === "browser" && softphone.ringing;

  const actions: ContactActions = {
    op: (id, op) => guard(() => call(api.POST(`/api/v1/contacts/{contact_id}/${op}`, { params: { path: { contact_id: id } } }))),
    dtmf: (id, digits) => guard(() => call(api.POST("/api/v1/contacts/{contact_id}/dtmf", { params: { path: { contact_id: id } }, body: { digits } }))),
    transfer: (id, target_type, target) =>
      guard(() => call(api.POST("/api/v1/contacts/{contact_id}/transfer", { params: { path: { contact_id: id } }, body: { target_type, target } }))),
    wrapup: async (id, code, notes) => {
      await call(api.POST("/api/v1/contacts/{contact_id}/wrapup", { params: { path: { contact_id: id } }, body: { code, notes, done: true } }));
      done(id);
      await refresh();
    },
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
    ["alt+T", () => current?.phase === "talking" && setTransferOpen(true)],
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
      {status && status.state === "offline" && (
        <DeviceSignIn
          softphone={softphone}
          onSignedIn={(kind) => {
            setDevice(kind);
            void refresh();
          }}
        />
      )}
      {status && status.state !== "offline" && (
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
              <Dialler disabled={contacts.some((c) => c.phase !== "wrapup")} onCall={(to) => guard(() => call(api.POST("/api/v1/calls", { body: { to, agent_id: me!.agent_id } })))} />
            </Grid.Col>
          </Grid>
          <Text size="xs">{t("agent.shortcuts")}</Text>
        </>
      )}
    </Stack>
  );
}
