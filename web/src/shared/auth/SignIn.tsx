import { Alert, Button, Center, Group, Paper, PasswordInput, Stack, TextInput, Title, Text } from "@mantine/core";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { api, ApiProblem, call } from "../api/client";
import { LanguageSwitch } from "../components/LanguageSwitch";
import { session, useSession } from "./session";

const LAST_TENANT = "cloudcc.tenant";

export function SignIn() {
  const { t } = useTranslation();
  const { expired } = useSession();
  const [tenant, setTenant] = useState(() => localStorage.getItem(LAST_TENANT) ?? "");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const token = await call(api.POST("/api/v1/auth/login", { body: { tenant, username, password } }));
      const me = await call(
        api.GET("/api/v1/me", { headers: { Authorization: `Bearer ${token.access_token}` } }),
      );
      localStorage.setItem(LAST_TENANT, tenant);
      session.signIn(token.access_token, me);
    } catch (e) {
      setError(e instanceof ApiProblem ? e.detail : String(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Center component="main" mih="100vh" p="md">
      <Paper withBorder shadow="sm" p="xl" radius="md" w={380}>
        <form onSubmit={submit} aria-labelledby="signin-title">
          <Stack>
            <Group justify="space-between">
              <Title order={1} size="h2" id="signin-title">
                {t("signin.title")}
              </Title>
              <LanguageSwitch />
            </Group>
            <Text c="dimmed" size="sm">
              {t("signin.intro")}
            </Text>
            {expired && <Alert color="yellow">{t("signin.expired")}</Alert>}
            {error && (
              <Alert color="red" role="alert">
                {t("signin.failed", { detail: error })}
              </Alert>
            )}
            <TextInput label={t("signin.tenant")} name="tenant" autoComplete="organization" required value={tenant} onChange={(e) => setTenant(e.currentTarget.value)} />
            <TextInput label={t("signin.username")} name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.currentTarget.value)} />
            <PasswordInput label={t("signin.password")} name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.currentTarget.value)} />
            <Button type="submit" loading={busy}>
              {t("signin.submit")}
            </Button>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
