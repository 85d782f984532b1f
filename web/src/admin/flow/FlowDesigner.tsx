// The IVR flow designer: the flow document as a graph (@xyflow/react), each node's exits as
// handles; drawing an edge sets an exit, deleting one clears it. Every change is checked by
// the server (POST /flow-validation, debounced) and its problems show on their nodes.
// Draft / publish / roll back through the flow's versions; import and export the JSON.
import "@xyflow/react/dist/style.css";
import { Alert, Badge, Button, FileButton, Group, List, NumberInput, Paper, Select, Stack, Text, TextInput, Textarea, Title } from "@mantine/core";
import {
  Background,
  Controls,
  Handle,
  Position,
  ReactFlow,
  applyNodeChanges,
  type Connection,
  type Edge as RFEdge,
  type Node as RFNode,
  type NodeChange,
  type NodeProps,
  type ReactFlowInstance,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { can, useSession } from "../../shared/auth/session";
import { NS } from "../i18n";
import { request, type Page } from "../rest";
import { connect, edgesOf, exitsOf, layout, newNode, NODE_TYPES, type FlowDoc, type FlowNodeDoc } from "./graph";

interface Problem {
  rule: string;
  message: string;
  node: string | null;
  field: string | null;
}
interface FlowSummary {
  id: string;
  name: string;
  published_version: number | null;
  has_draft: boolean;
  draft_revision: number;
}
interface FlowDetail extends FlowSummary {
  draft: FlowDoc | null;
  published: FlowDoc | null;
}
interface Version {
  number: number;
  state: string;
}

type NodeData = { doc: FlowNodeDoc; problems: string[]; start: boolean };

function FlowNode({ data, selected }: NodeProps<RFNode<NodeData>>) {
  const exits = exitsOf(data.doc);
  const bad = data.problems.length > 0;
  return (
    <Paper
      withBorder
      p="xs"
      shadow={selected ? "md" : undefined}
      style={{ minWidth: 170, borderColor: bad ? "var(--mantine-color-red-7)" : data.start ? "var(--mantine-color-blue-7)" : undefined, borderWidth: bad || data.start ? 2 : 1 }}
      data-testid={`flow-node-${data.doc.id}`}
    >
      <Handle type="target" position={Position.Left} />
      <Text fw={700} size="sm">
        {data.doc.id}
      </Text>
      <Text size="xs">{data.doc.type}</Text>
      {exits.map((exit) => (
        <div key={exit} style={{ position: "relative", textAlign: "right", fontSize: 11 }}>
          {exit}
          <Handle type="source" id={exit} position={Position.Right} />
        </div>
      ))}
      {data.problems.map((p) => (
        <Text key={p} size="xs" c="red.9" role="note" data-testid="flow-node-problem" style={{ maxWidth: 220 }}>
          {p}
        </Text>
      ))}
    </Paper>
  );
}

const nodeTypes = { flow: FlowNode };

function download(name: string, doc: FlowDoc) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = `${name}.json`;
  a.click();
  URL.revokeObjectURL(url);
}

export default function FlowDesigner() {
  const { t } = useTranslation(NS);
  const { me } = useSession();
  const writable = can(me, "flows:write");
  const [flows, setFlows] = useState<FlowSummary[]>([]);
  const [flowId, setFlowId] = useState<string | null>(null);
  const [detail, setDetail] = useState<FlowDetail | null>(null);
  const [doc, setDoc] = useState<FlowDoc | null>(null);
  const [positions, setPositions] = useState<Record<string, { x: number; y: number }>>({});
  // React Flow measures each node and shows it once its size is back in the node (controlled flow).
  const [sizes, setSizes] = useState<Record<string, { width?: number; height?: number }>>({});
  const [problems, setProblems] = useState<Problem[] | null>(null);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [versions, setVersions] = useState<Version[]>([]);
  const [rollbackTo, setRollbackTo] = useState<number | "">("");

  // Fit the graph in view once its nodes are measured (they are hidden until then).
  const instance = useRef<ReactFlowInstance<RFNode<NodeData>> | null>(null);
  const fitted = useRef<string | null>(null);
  useEffect(() => {
    if (!instance.current || !flowId || !doc || fitted.current === flowId) return;
    if (doc.nodes.length === 0 || !doc.nodes.every((n) => sizes[n.id]?.width)) return;
    fitted.current = flowId;
    const view = instance.current;
    requestAnimationFrame(() => void view.fitView({ padding: 0.1 }));
  }, [sizes, flowId, doc]);

  const fail = (e: unknown) => setMessage({ ok: false, text: t("form.failed", { detail: e instanceof Error ? e.message : String(e) }) });

  const loadFlows = useCallback(async () => {
    const page = await request<Page<FlowSummary>>("GET", "/api/v1/flows?limit=500");
    setFlows(page.items);
    return page.items;
  }, []);

  const open = useCallback(async (id: string) => {
    const d = await request<FlowDetail>("GET", `/api/v1/flows/${encodeURIComponent(id)}`);
    setDetail(d);
    const document = d.draft ?? d.published ?? { nodes: [] };
    setDoc(document);
    setPositions(layout(document));
    setSelected(null);
    setVersions(await request<Version[]>("GET", `/api/v1/flows/${encodeURIComponent(id)}/versions`));
  }, []);

  useEffect(() => {
    loadFlows()
      .then((items) => {
        const first = items[0]?.id;
        if (first) setFlowId((cur) => cur ?? first);
      })
      .catch(fail);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [loadFlows]);

  useEffect(() => {
    if (flowId) open(flowId).catch(fail);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [flowId, open]);

  // Validated as you go: the server's own rules, 400 ms after the last change.
  const latest = useRef(0);
  useEffect(() => {
    if (!doc) return;
    const ticket = ++latest.current;
    setProblems(null);
    const timer = setTimeout(() => {
      request<{ valid: boolean; problems: Problem[] }>("POST", "/api/v1/flow-validation", { document: doc })
        .then((r) => ticket === latest.current && setProblems(r.problems))
        .catch((e) => ticket === latest.current && setProblems([{ rule: "request", message: e instanceof Error ? e.message : String(e), node: null, field: null }]));
    }, 400);
    return () => clearTimeout(timer);
  }, [doc]);

  const byNode = useMemo(() => {
    const m = new Map<string, string[]>();
    for (const p of problems ?? []) if (p.node) m.set(p.node, [...(m.get(p.node) ?? []), p.field ? `${p.field}: ${p.message}` : p.message]);
    return m;
  }, [problems]);

  const nodes: RFNode<NodeData>[] = useMemo(
    () =>
      (doc?.nodes ?? []).map((n) => ({
        id: n.id,
        type: "flow",
        position: positions[n.id] ?? { x: 0, y: 0 },
        measured: sizes[n.id],
        data: { doc: n, problems: byNode.get(n.id) ?? [], start: doc?.start === n.id },
        selected: n.id === selected,
        ariaLabel: `${n.id} (${n.type})`,
      })),
    [doc, positions, sizes, byNode, selected],
  );
  const edges: RFEdge[] = useMemo(() => (doc ? edgesOf(doc).map((e) => ({ ...e, deletable: writable })) : []), [doc, writable]);

  const onNodesChange = useCallback(
    (changes: NodeChange<RFNode<NodeData>>[]) => {
      const moved = applyNodeChanges(changes, nodes);
      setPositions(Object.fromEntries(moved.map((n) => [n.id, n.position])));
      if (changes.some((c) => c.type === "dimensions")) setSizes(Object.fromEntries(moved.map((n) => [n.id, n.measured ?? {}])));
      for (const c of changes) if (c.type === "select" && c.selected) setSelected(c.id);
    },
    [nodes],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      if (doc && c.source && c.sourceHandle && c.target) setDoc(connect(doc, c.source, c.sourceHandle, c.target));
    },
    [doc],
  );

  const onEdgesDelete = useCallback(
    (deleted: RFEdge[]) => {
      if (!doc) return;
      let next = doc;
      for (const e of deleted) if (e.sourceHandle) next = connect(next, e.source, e.sourceHandle, null);
      setDoc(next);
    },
    [doc],
  );

  async function act(run: () => Promise<string>) {
    setMessage(null);
    try {
      const ok = await run();
      setMessage({ ok: true, text: ok });
      await loadFlows();
      if (flowId) await open(flowId);
    } catch (e) {
      fail(e);
    }
  }

  const path = flowId ? `/api/v1/flows/${encodeURIComponent(flowId)}` : "";
  const node = doc?.nodes.find((n) => n.id === selected) ?? null;

  return (
    <Stack data-testid="flow-designer">
      <Title order={3}>{t("resources.flows")}</Title>
      <Group align="end" wrap="wrap">
        <Select
          label={t("flow.choose")}
          data={flows.map((f) => ({ value: f.id, label: `${f.name} (${f.id})` }))}
          value={flowId}
          onChange={(v) => v && setFlowId(v)}
          allowDeselect={false}
          data-testid="flow-choose"
        />
        {detail && (
          <Badge variant="light" size="lg">
            {detail.published_version ? t("flow.published", { version: detail.published_version }) : t("flow.unpublished")}
            {detail.has_draft ? ` · ${t("flow.draft")} (${t("flow.revision", { revision: detail.draft_revision })})` : ""}
          </Badge>
        )}
      </Group>
      {writable && doc && flowId && (
        <Group wrap="wrap">
          <Button
            data-testid="flow-save"
            onClick={() =>
              act(async () => {
                await request("PUT", `${path}/draft`, { document: doc, expected_revision: detail?.has_draft ? detail.draft_revision : null });
                return t("flow.saved");
              })
            }
          >
            {t("flow.saveDraft")}
          </Button>
          <Button
            data-testid="flow-publish"
            color="green"
            disabled={!detail?.has_draft}
            onClick={() =>
              act(async () => {
                const s = await request<FlowSummary>("POST", `${path}/publish`, { expected_revision: detail?.draft_revision ?? null });
                return t("flow.published_ok", { version: s.published_version });
              })
            }
          >
            {t("flow.publish")}
          </Button>
          <Button variant="default" disabled={!detail?.has_draft} onClick={() =>
              act(async () => {
                await request("DELETE", `${path}/draft`);
                return t("form.saved");
              })
            }>
            {t("flow.discard")}
          </Button>
          <NumberInput
            label={t("flow.rollbackTo")}
            w={160}
            min={1}
            value={rollbackTo}
            onChange={(v) => setRollbackTo(typeof v === "number" ? v : "")}
          />
          <Button
            variant="default"
            disabled={versions.length < 2}
            onClick={() =>
              act(async () => {
                const s = await request<FlowSummary>("POST", `${path}/rollback`, { to_version: rollbackTo === "" ? null : rollbackTo });
                return t("flow.published_ok", { version: s.published_version });
              })
            }
          >
            {t("flow.rollback")}
          </Button>
          <Button variant="default" onClick={() => download(flowId, doc)}>
            {t("flow.exportJson")}
          </Button>
          <FileButton
            accept="application/json,.json"
            onChange={async (file) => {
              if (!file) return;
              try {
                const parsed = JSON.parse(await file.text()) as FlowDoc;
                if (!parsed || !Array.isArray(parsed.nodes)) throw new Error("nodes");
                setDoc(parsed);
                setPositions(layout(parsed));
              } catch (e) {
                setMessage({ ok: false, text: t("flow.badImport", { detail: e instanceof Error ? e.message : String(e) }) });
              }
            }}
          >
            {(props) => (
              <Button variant="default" {...props}>
                {t("flow.importJson")}
              </Button>
            )}
          </FileButton>
        </Group>
      )}
      {message && (
        <Alert color={message.ok ? "green" : "red"} role={message.ok ? "status" : "alert"} data-testid="flow-message">
          {message.text}
        </Alert>
      )}
      {doc && (
        <Text size="sm" role="status" data-testid="flow-validity" c={problems && problems.length ? "red.9" : undefined}>
          {problems === null ? t("flow.checking") : problems.length === 0 ? t("flow.valid") : t("flow.invalid", { count: problems.length })}
        </Text>
      )}
      {problems && problems.some((p) => !p.node) && (
        <List size="sm">
          {problems
            .filter((p) => !p.node)
            .map((p, i) => (
              <List.Item key={i}>{p.message}</List.Item>
            ))}
        </List>
      )}
      <Group align="start" wrap="nowrap">
        <div style={{ flex: 1, height: 560, border: "1px solid var(--mantine-color-gray-4)" }} aria-label={t("flow.canvas")} role="group">
          <ReactFlow
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            onNodesChange={onNodesChange}
            onConnect={writable ? onConnect : undefined}
            onEdgesDelete={onEdgesDelete}
            onPaneClick={() => setSelected(null)}
            nodesConnectable={writable}
            onInit={(i) => {
              instance.current = i;
            }}
            minZoom={0.2}
            proOptions={{ hideAttribution: true }}
          >
            <Background />
            <Controls />
          </ReactFlow>
        </div>
        {doc && writable && (
          <NodeEditor
            key={`${selected ?? ""}:${JSON.stringify(node)}`}
            doc={doc}
            node={node}
            onChange={(next, keepSelection) => {
              setDoc(next);
              setPositions((p) => ({ ...layout(next), ...p }));
              setSelected(keepSelection);
            }}
          />
        )}
      </Group>
    </Stack>
  );
}

function NodeEditor({ doc, node, onChange }: { doc: FlowDoc; node: FlowNodeDoc | null; onChange: (doc: FlowDoc, selected: string | null) => void }) {
  const { t } = useTranslation(NS);
  const [text, setText] = useState(node ? JSON.stringify(node, null, 2) : "");
  const [error, setError] = useState<string | null>(null);
  const [type, setType] = useState<string>("play");
  const [id, setId] = useState("");
  return (
    <Stack w={340}>
      <Select
        label={t("flow.start")}
        data={doc.nodes.map((n) => n.id)}
        value={doc.start ?? null}
        onChange={(v) => v && onChange({ ...doc, start: v }, node?.id ?? null)}
        allowDeselect={false}
      />
      <Title order={4}>{t("flow.addNode")}</Title>
      <Group align="end" wrap="nowrap">
        <Select label={t("flow.nodeType")} data={NODE_TYPES} value={type} onChange={(v) => v && setType(v)} allowDeselect={false} w={150} />
        <TextInput label={t("flow.nodeId")} value={id} onChange={(e) => setId(e.currentTarget.value)} w={110} data-testid="flow-new-id" />
      </Group>
      <Button
        variant="light"
        data-testid="flow-add"
        disabled={!id || doc.nodes.some((n) => n.id === id)}
        onClick={() => {
          onChange({ ...doc, nodes: [...doc.nodes, newNode(type, id)] }, id);
          setId("");
        }}
      >
        {t("flow.addNode")}
      </Button>
      {node ? (
        <>
          <Textarea
            label={t("flow.nodeProps")}
            autosize
            minRows={8}
            maxRows={20}
            ff="monospace"
            value={text}
            error={error}
            onChange={(e) => setText(e.currentTarget.value)}
            data-testid="flow-node-json"
          />
          <Group>
            <Button
              data-testid="flow-node-apply"
              onClick={() => {
                try {
                  const parsed = JSON.parse(text) as FlowNodeDoc;
                  if (!parsed.id || !parsed.type) throw new Error("id, type");
                  const nodes = doc.nodes.map((n) => (n.id === node.id ? parsed : n));
                  const start = doc.start === node.id ? parsed.id : doc.start;
                  onChange({ ...doc, start, nodes }, parsed.id);
                } catch (e) {
                  setError(t("form.badJson") + (e instanceof Error ? ` ${e.message}` : ""));
                }
              }}
            >
              {t("flow.apply")}
            </Button>
            <Button color="red" variant="light" onClick={() => onChange({ ...doc, nodes: doc.nodes.filter((n) => n.id !== node.id) }, null)}>
              {t("flow.remove")}
            </Button>
          </Group>
        </>
      ) : (
        <Text size="sm" c="dimmed">
          {t("flow.noSelection")}
        </Text>
      )}
    </Stack>
  );
}
