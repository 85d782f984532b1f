import { Anchor, Stack, Text, Title } from "@mantine/core";
import { useTranslation } from "react-i18next";

export default function AdminArea() {
  const { t } = useTranslation();
  return (
    <Stack>
      <Title order={2}>{t("area.admin")}</Title>
      <Text>{t("admin.intro")}</Text>
      <Anchor href="/api/docs">{t("admin.apiDocs")}</Anchor>
    </Stack>
  );
}
