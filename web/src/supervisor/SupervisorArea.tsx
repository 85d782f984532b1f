import { Alert, Badge, Button, Grid, Group, Menu, MultiSelect, Paper, Stack, Table, Text, Title } from "@mantine/core";
import { useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Bar, BarChart, CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { api, ApiProblem, call } from "../shared/api/client";
import { can, useSession } from "../shared/auth/session";
import { formatDuration, formatTime } from "../shared/i18n";
import { epochSeconds, useNow } from "../shared/time";
import { filterFloor, skillsOf } from "./filter";
import { useMonitorPhone } from "./MonitorPhone";
import { useFloor } from "./useFloor";

const pct = (v: number | null) => (v === null ? "—" : new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 }).format(v));
const FORCE = ["busy", "idle", "rest", "sign_out"] as const;
type Monitor = "listen" | "whisper" | "barge";

export default function SupervisorArea() {
  const { t } = useTranslation();
  const { me } = useSession();
  const floor = useFloor();
  const now = useNow();
  const [shownQueues, setShownQueues] = useState<string[]>([]);
  const [shownSkills, setShownSkills] = useState<string[]>([]);
  const { phone, panel } = useMonitorPhone();
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const monitor = can(me, "calls:monitor");
  const force = can(me, "agents:state");

  const shown = useMemo(() => filterFloor(floor, { queues: shownQueues, skills: shownSkills }), [floor, shownQueues, shownSkills]);
  const skills = useMemo(() => skillsOf(floor), [floor]);
  const agentName = (id: string | null) => floor.agents.find((a) => a.id === id)?.name ?? "—";
  const stateData = Object.entries(floor.byState).map(([state, n]) => ({ state: t(`agent.state.${state}`, { defaultValue: state }), n }));

  async function act(label: string, action: () => Promise<unknown>) {
    try {
      await action();
      setMessage({ ok: true, text: t("supervisor.done", { action: label }) });
    } catch (e) {
      setMessage({ ok: false, text: t("supervisor.error", { detail: e instanceof ApiProblem ? e.detail : String(e) }) });
    }
  }
  const contactOp = (id: string, op: "intercept" | "force-release" | "stop-monitor") =>
    call(api.POST(`/api/v1/contacts/{contact_id}/${op}`, { params: { path: { contact_id: id } } }));
  const monitorOp = (id: string, mode: Monitor) => {
    const device = phone.device();
    return phone.expect(() => call(api.POST("/api/v1/contacts/{contact_id}/monitor", { params: { path: { contact_id: id } }, body: { mode, device } })));
  };

  return (
    <Stack>
      <Title order={2}>{t("area.supervisor")}</Title>
      {message && (
        <Alert color={message.ok ? "teal" : "red"} role={message.ok ? "status" : "alert"} withCloseButton closeButtonLabel={t("supervisor.dismiss")} onClose={() => setMessage(null)}>
          {message.text}
        </Alert>
      )}
      <Paper withBorder p="md" component="section" aria-labelledby="queues-title">
        <Group justify="space-between" mb="sm">
          <Title order={3} id="queues-title">
            {t("supervisor.queues")}
          </Title>
          <Text data-testid="total-waiting">{t("supervisor.total", { waiting: floor.queues.reduce((n, q) => n + q.waiting, 0) })}</Text>
        </Group>
        <Group align="end" mb="sm" data-testid="filters">
          <MultiSelect label={t("supervisor.filter")} data={floor.queues.map((q) => ({ value: q.id, label: q.name }))} value={shownQueues} onChange={setShownQueues} clearable w={320} />
          <MultiSelect label={t("supervisor.skillFilter")} description={t("supervisor.skillFilterHelp")} data={skills} value={shownSkills} onChange={setShownSkills} clearable w={320} />
        </Group>
        <Table striped data-testid="queues">
          <Table.Thead>
            <Table.Tr>
              {(["queue", "waiting", "longest", "serviceLevel", "abandonRate", "staffed", "ready"] as const).map((k) => (
                <Table.Th key={k}>{t(`supervisor.${k}`)}</Table.Th>
              ))}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {shown.queues.map((q) => (
              <Table.Tr key={q.id} data-queue={q.name}>
                <Table.Td>{q.name}</Table.Td>
                <Table.Td data-testid="waiting">{q.waiting}</Table.Td>
                <Table.Td>{formatDuration(q.longest_wait)}</Table.Td>
                <Table.Td>{pct(q.service_level)}</Table.Td>
                <Table.Td>{pct(q.abandon_rate)}</Table.Td>
                <Table.Td>{q.staffed}</Table.Td>
                <Table.Td>{q.agents_by_state.ready ?? 0}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Paper>
      <Grid>
        <Grid.Col span={{ base: 12, md: 6 }}>
          <Paper withBorder p="md" component="figure" m={0} aria-label={t("supervisor.chartStates")}>
            <Text fw={600} mb="xs" component="figcaption">
              {t("supervisor.chartStates")}
            </Text>
            <ResponsiveContainer width="100%" height={180}>
              <BarChart data={stateData}>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis dataKey="state" />
                <YAxis allowDecimals={false} />
                <Tooltip />
                <Bar dataKey="n" fill="#1864ab" isAnimationActive={false} />
              </BarChart>
            </ResponsiveContainer>
          </Paper>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 6 }}>
          <Paper withBorder p="md" component="figure" m={0} aria-label={t("supervisor.chartWaiting")}>
            <Text fw={600} mb="xs" component="figcaption">
              {t("supervisor.chartWaiting")}
            </Text>
            <ResponsiveContainer width="100%" height={180}>
              <LineChart data={floor.waitingSeries}>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis dataKey="t" tickFormatter={(v: number) => formatTime(v)} />
                <YAxis allowDecimals={false} />
                <Tooltip labelFormatter={(v) => formatTime(Number(v))} />
                <Line dataKey="waiting" stroke="#c92a2a" dot={false} isAnimationActive={false} />
              </LineChart>
            </ResponsiveContainer>
          </Paper>
        </Grid.Col>
      </Grid>
      <Paper withBorder p="md" component="section" aria-labelledby="agents-title">
        <Title order={3} id="agents-title" mb="sm">
          {t("supervisor.agents")}
        </Title>
        <Table striped data-testid="agents">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t("supervisor.agent")}</Table.Th>
              <Table.Th>{t("supervisor.extension")}</Table.Th>
              <Table.Th>{t("supervisor.state")}</Table.Th>
              <Table.Th>{t("supervisor.inState")}</Table.Th>
              <Table.Th>{t("supervisor.onContacts")}</Table.Th>
              {force && <Table.Th>{t("supervisor.force")}</Table.Th>}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {shown.agents.map((a) => (
              <Table.Tr key={a.id} data-agent={a.extension}>
                <Table.Td>{a.name}</Table.Td>
                <Table.Td>{a.extension}</Table.Td>
                <Table.Td data-testid="agent-state">
                  {t(`agent.state.${a.state}`, { defaultValue: a.state })}
                  {a.reason ? ` · ${t(`agent.state.reason.${a.reason}`, { defaultValue: a.reason })}` : ""}
                </Table.Td>
                <Table.Td>{formatDuration(now - a.since)}</Table.Td>
                <Table.Td>{a.contacts}</Table.Td>
                {force && (
                  <Table.Td>
                    <Menu>
                      <Menu.Target>
                        <Button size="compact-sm" variant="default" aria-label={`${t("supervisor.force")} ${a.name}`}>
                          {t("supervisor.force")}
                        </Button>
                      </Menu.Target>
                      <Menu.Dropdown>
                        {FORCE.map((f) => (
                          <Menu.Item
                            key={f}
                            onClick={() =>
                              void act(t(`supervisor.forceAction.${f}`), () =>
                                call(api.POST("/api/v1/agents/{agent_id}/force", { params: { path: { agent_id: a.id } }, body: { action: f } })),
                              )
                            }
                          >
                            {t(`supervisor.forceAction.${f}`)}
                          </Menu.Item>
                        ))}
                      </Menu.Dropdown>
                    </Menu>
                  </Table.Td>
                )}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Paper>
      <Paper withBorder p="md" component="section" aria-labelledby="contacts-title">
        <Title order={3} id="contacts-title" mb="sm">
          {t("supervisor.contacts")}
        </Title>
        {monitor && panel}
        {shown.contacts.length === 0 ? (
          <Text>{t("supervisor.none")}</Text>
        ) : (
          <Table striped data-testid="live-contacts">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t("supervisor.customer")}</Table.Th>
                <Table.Th>{t("supervisor.queue")}</Table.Th>
                <Table.Th>{t("supervisor.contactState")}</Table.Th>
                <Table.Th>{t("supervisor.handledBy")}</Table.Th>
                <Table.Th>{t("supervisor.since")}</Table.Th>
                {monitor && <Table.Th />}
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {shown.contacts.map((c) => (
                <Table.Tr key={c.contact_id} data-contact={c.contact_id}>
                  <Table.Td>{c.customer ?? "—"}</Table.Td>
                  <Table.Td>{c.queue ?? "—"}</Table.Td>
                  <Table.Td>
                    {c.state} {c.monitored && <Badge variant="dot">{t("supervisor.listen")}</Badge>}
                  </Table.Td>
                  <Table.Td>{agentName(c.agent_id)}</Table.Td>
                  <Table.Td>{formatDuration(now - epochSeconds(c.created_at, now))}</Table.Td>
                  {monitor && (
                    <Table.Td>
                      <Group gap={4}>
                        {(["listen", "whisper", "barge"] as const).map((m) => (
                          <Button key={m} size="compact-sm" variant="default" disabled={!c.agent_id} onClick={() => void act(t(`supervisor.${m}`), () => monitorOp(c.contact_id, m))}>
                            {t(`supervisor.${m}`)}
                          </Button>
                        ))}
                        <Button size="compact-sm" variant="default" disabled={!c.monitored} onClick={() => void act(t("supervisor.intercept"), () => contactOp(c.contact_id, "intercept"))}>
                          {t("supervisor.intercept")}
                        </Button>
                        <Button size="compact-sm" variant="default" disabled={!c.monitored} onClick={() => void act(t("supervisor.stopMonitor"), () => contactOp(c.contact_id, "stop-monitor"))}>
                          {t("supervisor.stopMonitor")}
                        </Button>
                        <Button size="compact-sm" color="red" onClick={() => void act(t("supervisor.forceRelease"), () => contactOp(c.contact_id, "force-release"))}>
                          {t("supervisor.forceRelease")}
                        </Button>
                      </Group>
                    </Table.Td>
                  )}
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Paper>
    </Stack>
  );
}
