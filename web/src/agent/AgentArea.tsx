import { Stack, Title } from "@mantine/core";
import { useTranslation } from "react-i18next";

export default function AgentArea() {
  const { t } = useTranslation();
  return (
    <Stack>
      <Title order={2}>{t("area.agent")}</Title>
    </Stack>
  );
}
