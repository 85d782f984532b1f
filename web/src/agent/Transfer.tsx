// Transfer and consult: a searchable directory of what this user may read (agents with their
// state, queues with their waiting contacts, flows) and outside numbers; blind transfer
// (POST /contacts/{id}/transfer) or consult first (POST /contacts/{id}/consult).
import { Button, Group, Modal, SegmentedControl, Select, Stack, TextInput } from "@mantine/core";
import { useEffect, useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { api, call } from "../shared/api/client";

export type TargetType = "agent" | "queue" | "flow" | "external";
type Entry = { value: string; label: string };

async function listOrNothing<T>(pending: Promise<{ items: T[] }>): Promise<T[]> {
  return (await pending.catch(() => ({ items: [] as T[] }))).items;
}

/** The directory, read when the dialog opens (what the user may not read is simply absent). */
function useDirectory(opened: boolean): Record<Exclude<TargetType, "external">, Entry[]> {
  const { t } = useTranslation();
  const [agents, setAgents] = useState<{ extension: string; name: string; state: string | null }[]>([]);
  const [queues, setQueues] = useState<{ name: string; waiting: number | null }[]>([]);
  const [flows, setFlows] = useState<string[]>([]);
  useEffect(() => {
    if (!opened) return;
    let live = true;
    void (async () => {
      const [agentRows, queueRows, flowRows] = await Promise.all([
        listOrNothing(call(api.GET("/api/v1/agents", { params: { query: { limit: 500 } } }))),
        listOrNothing(call(api.GET("/api/v1/queues", { params: { query: { limit: 500 } } }))),
        listOrNothing(call(api.GET("/api/v1/flows", { params: { query: { limit: 500 } } }))),
      ]);
      if (!live) return;
      setFlows(flowRows.map((f) => f.name));
      setAgents(agentRows.map((a) => ({ extension: a.extension, name: a.name, state: null })));
      setQueues(queueRows.map((q) => ({ name: q.name, waiting: null })));
      const states = await Promise.all(
        agentRows.map((a) =>
          call(api.GET("/api/v1/agents/{agent_id}/status", { params: { path: { agent_id: a.id } } }))
            .then((s) => s.state)
            .catch(() => null),
        ),
      );
      const waiting = await Promise.all(
        queueRows.map((q) =>
          call(api.GET("/api/v1/queues/{queue_id}/stats", { params: { path: { queue_id: q.id } } }))
            .then((s) => (typeof s.waiting === "number" ? s.waiting : null))
            .catch(() => null),
        ),
      );
      if (!live) return;
      setAgents(agentRows.map((a, i) => ({ extension: a.extension, name: a.name, state: states[i] ?? null })));
      setQueues(queueRows.map((q, i) => ({ name: q.name, waiting: waiting[i] ?? null })));
    })();
    return () => {
      live = false;
    };
  }, [opened]);
  return {
    agent: agents.map((a) => ({
      value: a.extension,
      label: `${a.name} (${a.extension})${a.state ? ` · ${t(`agent.state.${a.state}`, { defaultValue: a.state })}` : ""}`,
    })),
    queue: queues.map((q) => ({ value: q.name, label: q.waiting === null ? q.name : `${q.name} · ${t("agent.transfer.waiting", { count: q.waiting })}` })),
    flow: flows.map((f) => ({ value: f, label: f })),
  };
}

export function Transfer({
  opened,
  onClose,
  onTransfer,
  onConsult,
}: {
  opened: boolean;
  onClose: () => void;
  onTransfer: (type: TargetType, target: string) => Promise<boolean>;
  onConsult: (type: Exclude<TargetType, "flow">, target: string) => Promise<boolean>;
}) {
  const { t } = useTranslation();
  const [type, setType] = useState<TargetType>("queue");
  const [target, setTarget] = useState("");
  const [busy, setBusy] = useState(false);
  const directory = useDirectory(opened);

  async function run(action: () => Promise<boolean>) {
    setBusy(true);
    try {
      if (await action()) onClose();
    } finally {
      setBusy(false);
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    void run(() => onTransfer(type, target));
  }

  const consult = type !== "flow" ? () => void run(() => onConsult(type, target)) : undefined;

  return (
    <Modal opened={opened} onClose={onClose} title={t("agent.transfer.title")} closeButtonProps={{ "aria-label": t("agent.transfer.close") }}>
      <form onSubmit={submit}>
        <Stack>
          <SegmentedControl
            aria-label={t("agent.transfer.type")}
            value={type}
            onChange={(v) => {
              setType(v as TargetType);
              setTarget("");
            }}
            data={(["queue", "agent", "flow", "external"] as const).map((v) => ({ value: v, label: t(`agent.transfer.${v}`) }))}
          />
          {type === "external" ? (
            <TextInput label={t("agent.transfer.number")} name="transfer-target" inputMode="tel" required value={target} onChange={(e) => setTarget(e.currentTarget.value)} />
          ) : (
            <Select
              label={t("agent.transfer.target")}
              name="transfer-target"
              searchable
              required
              nothingFoundMessage={t("agent.transfer.nothing")}
              data={directory[type]}
              value={target || null}
              onChange={(v) => setTarget(v ?? "")}
            />
          )}
          <Group>
            <Button type="submit" loading={busy} disabled={!target}>
              {t("agent.transfer.blind")}
            </Button>
            {consult && (
              <Button variant="default" loading={busy} disabled={!target} onClick={consult}>
                {t("agent.transfer.consult")}
              </Button>
            )}
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
