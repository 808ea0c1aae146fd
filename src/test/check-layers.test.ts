/** The floors check (tools/check-layers.ts) on made-up files, and on the repository itself. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkLayers, importsOf } from '../../tools/check-layers';

const run = (files: Record<string, string>) => checkLayers(Object.keys(files), (f) => files[f]);

describe('check-layers', () => {
  it('reads static, re-export, side-effect and dynamic imports with their lines, and skips comments and packages', () => {
    const text = [
      "import { a } from '../engine/op';",
      "import type {",
      "  B,",
      "} from './local';",
      "export { c } from '../util/random';",
      "import '../ui/styles.css';",
      "// import { x } from '../ui/App';",
      "/* import { y } from '../store/run'; */",
      "const m = await import('../model/load');",
      "import React from 'react';",
      "import shader from '../../shaders/matmul.wgsl?raw';",
    ].join('\n');
    const sites = importsOf('src/train/x.ts', text).map((s) => [s.line, s.target]);
    expect(sites).toEqual([
      [1, 'src/engine/op'],
      [4, 'src/train/local'],
      [5, 'src/util/random'],
      [6, 'src/ui/styles.css'],
      [9, 'src/model/load'],
      [11, 'shaders/matmul.wgsl'],
    ]);
  });

  it('flags an import running up a floor, with its file and line, and lets downward ones pass', () => {
    const r = run({
      'src/model/a.ts': "import { x } from '../engine/op';\nimport { y } from '../train/trainer';",
      'src/engine/op.ts': "import { z } from '../util/random';",
    });
    expect(r.upward.map((u) => `${u.site.file}:${u.site.line}`)).toEqual(['src/model/a.ts:2']);
    expect(r.cycles).toEqual([]);
  });

  it('keeps cli, demo and tools off the worker, and the worker off the store and the UI', () => {
    const r = run({
      'src/cli/main.ts': "import { s } from '../worker/session';\nimport { d } from '../demo/build';",
      'tools/bench/x.ts': "import { t } from '../../src/train/trainer';",
      'src/worker/session.ts': "import type { S } from '../store/settings-table';",
    });
    expect(r.upward.map((u) => `${u.site.file}:${u.site.line}`)).toEqual(['src/cli/main.ts:1', 'src/worker/session.ts:1']);
  });

  it('finds a folder cycle on the ground, and lets a test import its floor and the test helpers', () => {
    const r = run({
      'src/data/a.ts': "import { x } from '../io/b';",
      'src/io/b.ts': "import { y } from '../data/a';",
      'src/engine/k.test.ts': "import { g } from '../test/gpu';\nimport { r } from '../reference/matmul';",
      'src/engine/j.test.ts': "import { m } from '../model/llama';",
    });
    expect(r.cycles.map((c) => c.folders)).toEqual([['src/data', 'src/io']]);
    expect(r.upward.map((u) => `${u.site.file}:${u.site.line}`)).toEqual(['src/engine/j.test.ts:1']);
  });

  it('finds a circle of files inside one folder, type imports included, and names the imports that close it', () => {
    const r = run({
      'src/worker/session.ts': "import { startRun } from './run';\nimport { Chat } from './chat';",
      'src/worker/run.ts': "import type { Session } from './session';",
      'src/worker/chat.ts': "import type { State } from './state';",
      'src/worker/state.ts': "import { x } from '../util/x';",
      'src/util/x.ts': '',
    });
    expect(r.cycles).toEqual([]);
    expect(r.fileCycles.map((c) => c.files)).toEqual([['src/worker/run.ts', 'src/worker/session.ts']]);
    expect(r.fileCycles[0].edges.map((e) => `${e.file}:${e.line}`).sort()).toEqual(['src/worker/run.ts:1', 'src/worker/session.ts:1']);
    // A type re-export closes a circle as an import does.
    expect(run({ 'src/worker/a.ts': "import type { B } from './b';", 'src/worker/b.ts': "export type { A } from './a';" }).fileCycles).toHaveLength(1);
  });

  it('places every folder of the repository', () => {
    const r = run({ 'src/newfolder/x.ts': '' });
    expect(r.unplaced).toEqual(['src/newfolder/x.ts']);
    // The repository's own package.json runs it first in npm test.
    expect(JSON.parse(readFileSync('package.json', 'utf8')).scripts.test).toMatch(/^vite-node tools\/check-layers\.ts && /);
  });
});
