// A resource of the API as a list (TanStack Table: sorting, pages of the API's
// limit/offset, the API's filters) and a form (create / change / delete) drawn from its
// description. The API's RFC 9457 problems show at their field.
import { Alert, Button, Checkbox, Code, Group, Modal, NumberInput, Paper, PasswordInput, Select, Stack, Table, Text, TextInput, Textarea, Title, UnstyledButton } from "@mantine/core";
import { flexRender, getCoreRowModel, getSortedRowModel, useReactTable, type ColumnDef, type SortingState } from "@tanstack/react-table";
import { useCallback, useEffect, useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { ApiProblem } from "../shared/api/client";
import { can, useSession } from "../shared/auth/session";
import { NS } from "./i18n";
import { FormError, jsonProblem, toBody, toForm, type Field, type Resource } from "./resources";
import { fieldErrors, list, request, type Row } from "./rest";

const LIMIT = 25;

// Mantine's error red on white is below WCAG AA contrast (axe): a darker red for the message,
// the value in the text colour (the red border and the message mark the field).
const ERROR_STYLES = { input: { color: "var(--mantine-color-text)" }, error: { color: "var(--mantine-color-red-9)" } };

function cell(value: unknown, yes: string, no: string): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "boolean") return value ? yes : no;
  if (Array.isArray(value)) return value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) {
    const d = new Date(value);
    if (!Number.isNaN(d.getTime())) return new Intl.DateTimeFormat(document.documentElement.lang || undefined, { dateStyle: "short", timeStyle: "medium" }).format(d);
  }
  return String(value);
}

function rowName(row: Row): string {
  return String(row.name ?? row.code ?? row.username ?? row.number ?? row.url ?? row.id ?? "");
}

export function ResourcePage({ resource, onOpen }: { resource: Resource; onOpen?: (row: Row) => void }) {
  const { t } = useTranslation(NS);
  const { me } = useSession();
  const writable = !!resource.write && can(me, resource.write);
  const [rows, setRows] = useState<Row[]>([]);
  const [total, setTotal] = useState(0);
  const [offset, setOffset] = useState(0);
  const [filters, setFilters] = useState<Record<string, string>>({});
  const [applied, setApplied] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [sorting, setSorting] = useState<SortingState>([]);
  const [editing, setEditing] = useState<Row | "new" | null>(null);
  const [deleting, setDeleting] = useState<Row | null>(null);
  const [secret, setSecret] = useState<string | null>(null);

  const load = useCallback(async () => {
    setLoading(true);
    try {
      const params: Record<string, string | number> = { limit: LIMIT, offset };
      for (const f of resource.filters ?? []) {
        const v = applied[f.name];
        if (v) params[f.name] = f.kind === "datetime" ? new Date(v).toISOString() : v;
      }
      const page = await list(resource.path, params);
      setRows(page.items);
      setTotal(page.total);
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setLoading(false);
    }
  }, [resource, offset, applied]);

  useEffect(() => {
    void load();
  }, [load]);

  const columns = useMemo<ColumnDef<Row>[]>(
    () =>
      resource.columns.map((name) => ({
        id: name,
        accessorFn: (row: Row) => {
          const v = row[name];
          return typeof v === "number" || typeof v === "string" || typeof v === "boolean" ? v : cell(v, "1", "0");
        },
        header: t(`fields.${name}`),
        cell: (info) => cell(info.row.original[name], t("list.yes"), t("list.no")),
      })),
    [resource, t],
  );

  const table = useReactTable({
    data: rows,
    columns,
    state: { sorting },
    onSortingChange: setSorting,
    getCoreRowModel: getCoreRowModel(),
    getSortedRowModel: getSortedRowModel(),
  });

  const what = t(`resources.${resource.key}`);
  const pages = Math.max(1, Math.ceil(total / LIMIT));
  const page = Math.floor(offset / LIMIT) + 1;

  return (
    <Stack data-testid={`resource-${resource.key}`}>
      <Group justify="space-between">
        <Title order={3}>{what}</Title>
        {writable && resource.fields.length > 0 && (
          <Button onClick={() => setEditing("new")} data-testid="resource-new">
            {t("list.new")}
          </Button>
        )}
      </Group>
      {resource.filters && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setOffset(0);
            setApplied(filters);
          }}
        >
          <Group align="end" wrap="wrap" role="search" aria-label={t("list.filters")}>
            {resource.filters.map((f) => (
              <TextInput
                key={f.name}
                label={t(`fields.${f.name}`)}
                type={f.kind === "datetime" ? "datetime-local" : "text"}
                value={filters[f.name] ?? ""}
                onChange={(e) => setFilters({ ...filters, [f.name]: e.currentTarget.value })}
              />
            ))}
            <Button type="submit" variant="default">
              {t("list.apply")}
            </Button>
          </Group>
        </form>
      )}
      {secret && (
        <Alert color="yellow" title={t("form.secretOnce")} withCloseButton onClose={() => setSecret(null)} closeButtonLabel={t("form.cancel")}>
          <Code data-testid="api-key-secret">{secret}</Code>
        </Alert>
      )}
      {error && (
        <Alert color="red" role="alert">
          {error}
        </Alert>
      )}
      <Table.ScrollContainer minWidth={600}>
        <Table striped highlightOnHover aria-label={what} aria-busy={loading}>
          <Table.Thead>
            {table.getHeaderGroups().map((group) => (
              <Table.Tr key={group.id}>
                {group.headers.map((header) => {
                  const sorted = header.column.getIsSorted();
                  return (
                    <Table.Th key={header.id} aria-sort={sorted === "asc" ? "ascending" : sorted === "desc" ? "descending" : "none"}>
                      <UnstyledButton onClick={header.column.getToggleSortingHandler()} fw={600} fz="sm">
                        {flexRender(header.column.columnDef.header, header.getContext())}
                        {sorted === "asc" ? " ▲" : sorted === "desc" ? " ▼" : ""}
                      </UnstyledButton>
                    </Table.Th>
                  );
                })}
                {(writable || onOpen) && <Table.Th>{t("list.actions")}</Table.Th>}
              </Table.Tr>
            ))}
          </Table.Thead>
          <Table.Tbody>
            {table.getRowModel().rows.map((row) => (
              <Table.Tr key={row.id} data-testid="resource-row">
                {row.getVisibleCells().map((c) => (
                  <Table.Td key={c.id}>{flexRender(c.column.columnDef.cell, c.getContext())}</Table.Td>
                ))}
                {(writable || onOpen) && (
                  <Table.Td>
                    <Group gap="xs" wrap="nowrap">
                      {onOpen && (
                        <Button size="xs" variant="light" onClick={() => onOpen(row.original)} aria-label={`${t("list.details")} ${rowName(row.original)}`}>
                          {t("list.details")}
                        </Button>
                      )}
                      {writable && resource.fields.length > 0 && (
                        <Button size="xs" variant="light" onClick={() => setEditing(row.original)} aria-label={`${t("list.edit")} ${rowName(row.original)}`}>
                          {t("list.edit")}
                        </Button>
                      )}
                      {writable && resource.deletable && (
                        <Button size="xs" variant="light" color="red" onClick={() => setDeleting(row.original)} aria-label={`${t("list.delete")} ${rowName(row.original)}`}>
                          {t("list.delete")}
                        </Button>
                      )}
                    </Group>
                  </Table.Td>
                )}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
      {!loading && rows.length === 0 && <Text c="dimmed">{t("list.empty")}</Text>}
      <Group justify="space-between">
        <Text size="sm">{t("list.total", { count: total })}</Text>
        <Group gap="xs">
          <Button size="xs" variant="default" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - LIMIT))}>
            {t("list.previous")}
          </Button>
          <Text size="sm">{t("list.page", { page, pages })}</Text>
          <Button size="xs" variant="default" disabled={page >= pages} onClick={() => setOffset(offset + LIMIT)}>
            {t("list.next")}
          </Button>
        </Group>
      </Group>
      {editing && (
        <ResourceForm
          resource={resource}
          row={editing === "new" ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={(saved) => {
            setEditing(null);
            if (typeof saved.secret === "string") setSecret(saved.secret);
            void load();
          }}
        />
      )}
      <Modal opened={deleting !== null} onClose={() => setDeleting(null)} title={t("list.delete")} closeButtonProps={{ "aria-label": t("form.cancel") }}>
        <Stack>
          <Text>{t("list.confirmDelete", { name: deleting ? rowName(deleting) : "" })}</Text>
          <Group justify="end">
            <Button variant="default" onClick={() => setDeleting(null)}>
              {t("form.cancel")}
            </Button>
            <Button
              color="red"
              data-testid="confirm-delete"
              onClick={async () => {
                if (!deleting) return;
                try {
                  await request("DELETE", `${resource.path}/${encodeURIComponent(String(deleting.id))}`);
                  setError(null);
                } catch (e) {
                  setError(e instanceof Error ? e.message : String(e));
                }
                setDeleting(null);
                void load();
              }}
            >
              {t("list.delete")}
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}

/** A resource that is one object (the tenant's settings): its form on the page, no list. */
export function SettingsPage({ resource }: { resource: Resource }) {
  const { t } = useTranslation(NS);
  const { me } = useSession();
  const [row, setRow] = useState<Row | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    request<Row>("GET", resource.path).then(setRow, (e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [resource]);
  const what = t(`resources.${resource.key}`);
  return (
    <Stack data-testid={`resource-${resource.key}`}>
      <Title order={3}>{what}</Title>
      {error && (
        <Alert color="red" role="alert">
          {error}
        </Alert>
      )}
      {saved && (
        <Alert color="teal" role="status" withCloseButton onClose={() => setSaved(false)} closeButtonLabel={t("form.cancel")}>
          {t("form.saved")}
        </Alert>
      )}
      {row && (
        <ResourceForm
          key={String(row.updated_at ?? "")}
          resource={resource}
          row={row}
          inline
          readOnly={!resource.write || !can(me, resource.write)}
          onClose={() => setSaved(false)}
          onSaved={(next) => {
            setRow(next);
            setSaved(true);
          }}
        />
      )}
    </Stack>
  );
}

/** A nested setting as JSON text, checked as it is typed (syntax, object or list); the API's
 * schema errors for it show at the field after a save. */
function JsonField({ field, label, value, error, disabled, onChange }: { field: Field; label: string; value: string; error?: string; disabled?: boolean; onChange: (v: string) => void }) {
  const { t } = useTranslation(NS);
  const problem = jsonProblem(field.kind, value);
  const typed = problem ? t(problem.key) + (problem.detail ? ` ${problem.detail}` : "") : undefined;
  return (
    <Textarea
      label={label}
      name={field.name}
      description={t("form.jsonHint")}
      error={typed ?? error}
      // monospace for the JSON only, not the label and messages
      styles={{ ...ERROR_STYLES, input: { ...ERROR_STYLES.input, fontFamily: "var(--mantine-font-family-monospace)" } }}
      disabled={disabled}
      autosize
      minRows={3}
      spellCheck={false}
      value={value}
      onChange={(e) => onChange(e.currentTarget.value)}
      data-testid={`json-${field.name}`}
    />
  );
}

function ResourceForm({
  resource,
  row,
  onClose,
  onSaved,
  inline,
  readOnly,
}: {
  resource: Resource;
  row: Row | null;
  onClose: () => void;
  onSaved: (saved: Row) => void;
  inline?: boolean;
  readOnly?: boolean;
}) {
  const { t } = useTranslation(NS);
  const { me } = useSession();
  const allowed = (f: Field) => !f.permission || can(me, f.permission);
  const [values, setValues] = useState(() => toForm(resource, row));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const what = t(`resources.${resource.key}`);
  const set = (name: string, v: string | boolean) => setValues((old) => ({ ...old, [name]: v }));

  async function submit() {
    setBusy(true);
    setErrors({});
    setProblem(null);
    try {
      const body = toBody(resource, values, row, allowed);
      const target = resource.single ? resource.path : `${resource.path}/${encodeURIComponent(String(row?.id))}`;
      const saved = row ? await request<Row>("PATCH", target, body) : await request<Row>("POST", resource.path, body);
      onSaved(saved);
    } catch (e) {
      if (e instanceof FormError) setErrors({ [e.field]: t(e.key) + (e.detail ? ` ${e.detail}` : "") });
      else if (e instanceof ApiProblem) {
        const at = fieldErrors(e.body);
        setErrors(at);
        // A problem that names no field of the form shows above the buttons.
        if (!Object.keys(at).some((f) => resource.fields.some((x) => x.name === f))) setProblem(t("form.failed", { detail: e.detail }));
      } else setProblem(String(e));
    } finally {
      setBusy(false);
    }
  }

  const form = (
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <Stack>
          {resource.fields.filter(allowed).map((f) => {
            const label = t(`fields.${f.name}`);
            const common = { label, error: errors[f.name], styles: ERROR_STYLES, name: f.name, withAsterisk: !row && f.required, disabled: readOnly || (!!row && f.createOnly) };
            const v = values[f.name];
            switch (f.kind.type) {
              case "bool":
                return <Checkbox key={f.name} label={label} error={errors[f.name]} styles={{ error: ERROR_STYLES.error }} name={f.name} checked={Boolean(v)} onChange={(e) => set(f.name, e.currentTarget.checked)} />;
              case "secret":
                return (
                  <PasswordInput
                    key={f.name}
                    {...common}
                    autoComplete="new-password"
                    description={row ? t("form.secretKept") : undefined}
                    value={String(v)}
                    onChange={(e) => set(f.name, e.currentTarget.value)}
                  />
                );
              case "number":
                return (
                  <NumberInput
                    key={f.name}
                    {...common}
                    min={f.kind.min}
                    max={f.kind.max}
                    clampBehavior="none" // the API judges, and says why at the field
                    value={v === "" ? "" : Number(v)}
                    onChange={(n) => set(f.name, n === "" ? "" : String(n))}
                  />
                );
              case "select":
                return (
                  <Select
                    key={f.name}
                    {...common}
                    data={f.kind.options}
                    clearable={!f.required}
                    value={v === "" ? null : String(v)}
                    onChange={(s) => set(f.name, s ?? "")}
                  />
                );
              case "json":
                return <JsonField key={f.name} field={f} label={label} value={String(v)} error={errors[f.name]} disabled={common.disabled} onChange={(text) => set(f.name, text)} />;
              case "list":
                return (
                  <Textarea
                    key={f.name}
                    {...common}
                    autosize
                    minRows={2}
                    value={String(v)}
                    onChange={(e) => set(f.name, e.currentTarget.value)}
                  />
                );
              default:
                return <TextInput key={f.name} {...common} value={String(v)} onChange={(e) => set(f.name, e.currentTarget.value)} />;
            }
          })}
          {problem && (
            <Alert color="red" role="alert">
              {problem}
            </Alert>
          )}
          {!readOnly && (
            <Group justify="end">
              {!inline && (
                <Button variant="default" onClick={onClose}>
                  {t("form.cancel")}
                </Button>
              )}
              <Button type="submit" loading={busy} data-testid="resource-save">
                {t("form.save")}
              </Button>
            </Group>
          )}
        </Stack>
      </form>
  );
  if (inline)
    return (
      <Paper withBorder p="md" maw={720}>
        {form}
      </Paper>
    );
  return (
    <Modal opened onClose={onClose} size="lg" title={row ? t("form.change", { what }) : t("form.create", { what })} closeButtonProps={{ "aria-label": t("form.cancel") }}>
      {form}
    </Modal>
  );
}
