import { describe, expect, it } from "vitest";
import { gatherSkills } from "./SkillsPage";

describe("gatherSkills", () => {
  it("lists each skill once with its agents' levels and its queues' minimums, sorted", () => {
    const skills = gatherSkills(
      [
        { name: "Ann", skills: { support: 5, sales: 3 } },
        { name: "Bob", skills: { sales: 7 } },
        { name: "Cy" },
      ],
      [
        { name: "support", required_skills: { support: 1 } },
        { name: "vip", required_skills: { sales: 6, billing: 2 } },
      ],
    );
    expect(skills).toEqual([
      { name: "billing", agents: [], queues: [{ name: "vip", level: 2 }] },
      { name: "sales", agents: [{ name: "Ann", level: 3 }, { name: "Bob", level: 7 }], queues: [{ name: "vip", level: 6 }] },
      { name: "support", agents: [{ name: "Ann", level: 5 }], queues: [{ name: "support", level: 1 }] },
    ]);
  });
});
