import { Anchor, AppShell, Badge, Button, Group, Tabs, Text, Title } from "@mantine/core";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { session, type Area, type Me } from "../auth/session";
import { useStream } from "../events/context";
import { useStreamStatus } from "../events/stream";
import { navigate } from "../router";
import { LanguageSwitch } from "./LanguageSwitch";

const STATUS_COLOR = { open: "green", connecting: "yellow", closed: "red" } as const;

export function Shell({ me, areas, area, children }: { me: Me; areas: Area[]; area: Area | null; children: ReactNode }) {
  const { t } = useTranslation();
  const status = useStreamStatus(useStream());
  return (
    <AppShell header={{ height: 56 }} padding="md">
      <Anchor href="#main" className="skip-link">
        {t("app.skip")}
      </Anchor>
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group wrap="nowrap">
            <Title order={1} size="h4">
              {t("app.name")}
            </Title>
            {areas.length > 0 && (
              <Tabs value={area} onChange={(value) => value && navigate(`/${value}`)} variant="pills" aria-label={t("shell.areas")}>
                <Tabs.List>
                  {areas.map((a) => (
                    <Tabs.Tab key={a} value={a}>
                      {t(`area.${a}`)}
                    </Tabs.Tab>
                  ))}
                </Tabs.List>
              </Tabs>
            )}
          </Group>
          <Group wrap="nowrap" gap="sm">
            <Badge color={STATUS_COLOR[status]} variant="dot" role="status" data-testid="stream-status">
              {t(`shell.stream.${status}`)}
            </Badge>
            <Text size="sm" visibleFrom="md">
              {t("shell.signedInAs", { name: me.name, role: me.role })}
            </Text>
            <LanguageSwitch />
            <Button variant="default" size="xs" onClick={() => session.signOut()}>
              {t("shell.signout")}
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Main id="main" tabIndex={-1}>
        {children}
      </AppShell.Main>
    </AppShell>
  );
}
