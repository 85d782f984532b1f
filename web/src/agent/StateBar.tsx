import { Badge, Button, Group, Menu, Paper, Text } from "@mantine/core";
import { useTranslation } from "react-i18next";
import { formatDuration } from "../shared/i18n";
import { useNow } from "../shared/time";
import { BUILTIN_REASONS, useReasonCodes } from "./codes";
import { CEC_STATES, type Status } from "./model";


const COLOR: Record<string, string> = { ready: "green", not_ready: "orange", alerting: "blue", busy: "grape", wrap_up: "cyan" };

export function StateBar(props: { status: Status; onReady: () => void; onNotReady: (reason: string) => void; onSignOut: () => void }) {
  const { t } = useTranslation();
  const now = useNow();
  const tenantReasons = useReasonCodes();
  const { status } = props;
  const reasons = [
    ...BUILTIN_REASONS.map((code) => ({ code, label: t(`agent.state.reason.${code}`) })),
    ...tenantReasons.filter((r) => !BUILTIN_REASONS.includes(r.code)).map((r) => ({ code: r.code, label: r.label || r.code })),
  ];
  const stateName = t(`agent.state.${status.state}`, { defaultValue: status.state });
  const reason = status.reason ? (reasons.find((r) => r.code === status.reason)?.label ?? status.reason) : null;
  return (
    <Paper withBorder p="sm" component="section" aria-label={t("agent.state.label")}>
      <Group justify="space-between">
        <Group gap="sm">
          <Badge size="lg" variant="dot" color={COLOR[status.state] ?? "gray"} data-testid="agent-state">
            {reason ? `${stateName} · ${reason}` : stateName}
          </Badge>
          <Text size="sm" data-testid="cec-state">
            {t("agent.state.cec", { name: CEC_STATES[status.cti_code] ?? "?", code: status.cti_code })}
          </Text>
          <Text size="sm" role="timer" aria-live="off">
            {t("agent.state.since", { time: formatDuration(now - status.since) })}
          </Text>
        </Group>
        <Group gap="xs">
          <Button size="xs" color="teal" disabled={status.state === "ready"} onClick={props.onReady}>
            {t("agent.state.goReady")}
          </Button>
          <Menu>
            <Menu.Target>
              <Button size="xs" variant="default">
                {t("agent.state.notReady")}
              </Button>
            </Menu.Target>
            <Menu.Dropdown>
              {reasons.map((r) => (
                <Menu.Item key={r.code} onClick={() => props.onNotReady(r.code)}>
                  {r.label}
                </Menu.Item>
              ))}
            </Menu.Dropdown>
          </Menu>
          <Button size="xs" variant="subtle" onClick={props.onSignOut}>
            {t("agent.state.signOut")}
          </Button>
        </Group>
      </Group>
    </Paper>
  );
}
