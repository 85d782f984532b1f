import { describe, expect, it } from "vitest";
import { en } from "./en";
import { zhCN } from "./zh-CN";

function keys(tree: object, prefix = ""): string[] {
  return Object.entries(tree).flatMap(([k, v]) => (typeof v === "string" ? [prefix + k] : keys(v as object, `${prefix}${k}.`)));
}

describe("message catalogues", () => {
  it("have the same keys and no empty message", () => {
    expect(keys(zhCN).sort()).toEqual(keys(en).sort());
    const flat = (t: object): string[] => Object.values(t).flatMap((v) => (typeof v === "string" ? [v] : flat(v as object)));
    expect(flat(zhCN).every((m) => m.length > 0)).toBe(true);
  });

  it("keep the same interpolation variables in each language", () => {
    const vars = (m: string) => [...m.matchAll(/\{\{(\w+)\}\}/g)].map((x) => x[1]).sort();
    const pairs = (t: object, prefix = ""): [string, string][] =>
      Object.entries(t).flatMap(([k, v]) => (typeof v === "string" ? [[prefix + k, v] as [string, string]] : pairs(v as object, `${prefix}${k}.`)));
    const zh = new Map(pairs(zhCN));
    for (const [key, message] of pairs(en)) expect(vars(zh.get(key) ?? ""), key).toEqual(vars(message));
  });
});
