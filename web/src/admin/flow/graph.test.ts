import { describe, expect, it } from "vitest";
import { connect, edgesOf, exitsOf, layout, newNode, type FlowDoc, type FlowNodeDoc } from "./graph";

const doc: FlowDoc = {
  format: "cloudcc.flow/1",
  id: "f",
  name: "F",
  start: "menu",
  nodes: [
    { id: "menu", type: "menu", prompt: { text: "x" }, options: [{ key: "1", next: "sales" }, { key: "2" }], outputs: { no_input: "bye" } },
    { id: "sales", type: "transfer_queue", queue: "sales" },
    { id: "bye", type: "hangup" },
  ],
};

describe("flow graph", () => {
  it("reads menu options and outputs as edges", () => {
    expect(exitsOf(doc.nodes[0] as FlowNodeDoc)).toEqual(["option:1", "option:2", "no_input", "invalid"]);
    expect(edgesOf(doc).map((e) => `${e.source}-${e.label}-${e.target}`)).toEqual(["menu-option:1-sales", "menu-no_input-bye"]);
  });

  it("connects and disconnects exits in the document", () => {
    const a = connect(doc, "menu", "option:2", "bye");
    expect(a.nodes[0]?.options?.[1]).toEqual({ key: "2", next: "bye" });
    const b = connect(a, "menu", "no_input", null);
    expect(b.nodes[0]?.outputs).toBeUndefined();
    const c = connect(b, "menu", "invalid", "sales");
    expect(c.nodes[0]?.outputs).toEqual({ invalid: "sales" });
    expect(doc.nodes[0]?.outputs).toEqual({ no_input: "bye" }); // the original is untouched
  });

  it("lays nodes out by distance from the start", () => {
    const at = layout(doc);
    expect(at.menu?.x).toBe(0);
    expect(at.sales?.x ?? 0).toBeGreaterThan(0);
    expect(at.bye?.x).toBe(at.sales?.x);
    expect(at.bye?.y).not.toBe(at.sales?.y);
  });

  it("gives a new node the settings its type needs", () => {
    expect(newNode("play", "p")).toMatchObject({ id: "p", type: "play", prompt: { text: "…" } });
  });
});
