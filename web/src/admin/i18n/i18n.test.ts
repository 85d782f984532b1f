import { describe, expect, it } from "vitest";
import { RESOURCES } from "../resources";
import { adminEn } from "./en";
import { adminZhCN } from "./zh-CN";

function pairs(t: object, prefix = ""): [string, string][] {
  return Object.entries(t).flatMap(([k, v]) => (typeof v === "string" ? [[prefix + k, v] as [string, string]] : pairs(v as object, `${prefix}${k}.`)));
}

describe("admin catalogues", () => {
  it("have the same keys, no empty message, the same variables", () => {
    const zh = new Map(pairs(adminZhCN));
    const en = pairs(adminEn);
    expect([...zh.keys()].sort()).toEqual(en.map(([k]) => k).sort());
    const vars = (m: string) => [...m.matchAll(/\{\{(\w+)\}\}/g)].map((x) => x[1]).sort();
    for (const [key, message] of en) {
      expect(zh.get(key)?.length, key).toBeGreaterThan(0);
      expect(vars(zh.get(key) ?? ""), key).toEqual(vars(message));
    }
  });

  it("name every resource, column, field and filter", () => {
    const fields = adminEn.fields as Record<string, string>;
    for (const r of RESOURCES) {
      expect(adminEn.resources, r.key).toHaveProperty([r.key]);
      for (const name of [...r.columns, ...r.fields.map((f) => f.name), ...(r.filters ?? []).map((f) => f.name)])
        expect(fields[name], `${r.key}.${name}`).toBeTruthy();
    }
  });
});
