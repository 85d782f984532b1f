import { Button, Chip, Group, Paper, Stack, TextInput, Title } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";

const RECENT = "cloudcc.recent-numbers";

export function recentNumbers(): string[] {
  try {
    return JSON.parse(localStorage.getItem(RECENT) ?? "[]") as string[];
  } catch {
    return [];
  }
}

function remember(number: string) {
  const list = [number, ...recentNumbers().filter((n) => n !== number)].slice(0, 8);
  localStorage.setItem(RECENT, JSON.stringify(list));
}

/** Outbound: the agent's phone rings first, then the customer (POST /calls). */
export function Dialler({ onCall, disabled }: { onCall: (to: string) => Promise<void>; disabled: boolean }) {
  const { t } = useTranslation();
  const [number, setNumber] = useState("");
  const [recent, setRecent] = useState(recentNumbers);

  async function submit(e: FormEvent) {
    e.preventDefault();
    await onCall(number.trim());
    remember(number.trim());
    setRecent(recentNumbers());
  }

  return (
    <Paper withBorder p="md" component="section" aria-labelledby="dialler-title">
      <form onSubmit={submit}>
        <Stack gap="sm">
          <Title order={3} size="h4" id="dialler-title">
            {t("agent.dialler.title")}
          </Title>
          <Group align="end">
            <TextInput label={t("agent.dialler.number")} name="dial" inputMode="tel" required pattern="^(\+?[0-9*#]{1,32}|sips?:\S{3,200})$" value={number} onChange={(e) => setNumber(e.currentTarget.value)} />
            <Button type="submit" disabled={disabled}>
              {t("agent.dialler.call")}
            </Button>
          </Group>
          {recent.length > 0 && (
            <Group gap={4} role="group" aria-label={t("agent.dialler.recent")}>
              {recent.map((n) => (
                <Chip key={n} checked={false} size="xs" onChange={() => setNumber(n)}>
                  {n}
                </Chip>
              ))}
            </Group>
          )}
        </Stack>
      </form>
    </Paper>
  );
}
