/**
 * `--data hf:OWNER/NAME[:CONFIG][@SPLIT]`: a dataset from the Hugging Face Hub, read by the same
 * client as the playground's (io/hub-datasets.ts: the Parquet listing, range requests, the cache
 * HUB_CACHE with the same keys, here on disk: io/node-cache.ts), mapped by the same column layouts
 * (data/columns.ts) and handed to the importer as one JSON Lines file, as the page does.
 *
 * Options: --rows N (default 1000), --data-type NAME (one type for the whole dataset),
 * --type-column COLUMN, --columns instruction=COL,input=COL,output=COL (or messages=COL) for a
 * layout that is not recognised. A gated or private dataset takes the token in $HF_TOKEN (never
 * written anywhere).
 */
import { type ColumnMapping, DEFAULT_DATASET_TYPE, detectMapping, mappingProblem, mixJsonl, rowRecord } from '../data/columns';
import { datasetRefText, type HubDataOptions, inspectHubDataset, parseDatasetRef, readHubDatasetRows } from '../io/hub-datasets';
import { HubError } from '../io/hub';

export const HUB_DATA_PREFIX = 'hf:';
export const DEFAULT_HUB_ROWS = 1000;

export interface HubDataFlags {
  rows?: number;
  dataType?: string;
  typeColumn?: string;
  columns?: string;
}

/** The mapping the flags describe for these columns (the recognised layout unless --columns). */
export function mappingFromFlags(columns: readonly string[], f: HubDataFlags, what: string): ColumnMapping {
  let m: ColumnMapping | null;
  if (f.columns !== undefined) {
    const parts: Record<string, string> = {};
    for (const p of f.columns.split(',')) {
      const [k, v] = p.split('=').map((s) => s.trim());
      if (!['instruction', 'input', 'output', 'messages'].includes(k) || !v) {
        throw new HubError(`--columns: "${p}" is not FIELD=COLUMN with FIELD instruction, input, output or messages`);
      }
      parts[k] = v;
    }
    m = { layout: 'custom', ...parts, type: { name: DEFAULT_DATASET_TYPE } };
  } else {
    m = detectMapping(columns);
    if (!m) {
      throw new HubError(
        `${what}: its columns (${columns.map((c) => `"${c}"`).join(', ')}) are not a layout this runner knows (official, Alpaca, Dolly, chat messages); map them with --columns instruction=COL,output=COL[,input=COL]`,
      );
    }
  }
  if (f.typeColumn !== undefined) m.type = { column: f.typeColumn };
  else if (f.dataType !== undefined) m.type = { name: f.dataType };
  const problem = mappingProblem(m, columns);
  if (problem) throw new HubError(`${what}: ${problem}`);
  return m;
}

/** Reads the dataset a `hf:` spec names; returns a JSON Lines file for the importer, and its name. */
export async function loadHubData(spec: string, f: HubDataFlags, opts: HubDataOptions & { log(line: string): void }): Promise<{ name: string; bytes: Uint8Array }> {
  const ref = parseDatasetRef(spec.slice(HUB_DATA_PREFIX.length));
  const rows = f.rows ?? DEFAULT_HUB_ROWS;
  const info = await inspectHubDataset(ref, opts);
  const what = datasetRefText({ repo: info.repo, config: info.config, split: info.split });
  const mapping = mappingFromFlags(info.columns, f, what);
  const typeText = 'column' in mapping.type ? `types from column "${mapping.type.column}"` : `type "${mapping.type.name}"`;
  opts.log(`${what}: ${mapping.layout} layout, ${typeText}; reading up to ${rows} rows of ${info.urls.length} Parquet file${info.urls.length === 1 ? '' : 's'}`);
  let shown = -1;
  const read = await readHubDatasetRows(info, mapping, rows, {
    ...opts,
    onProgress: (p) => {
      const tenth = p.total > 0 ? Math.floor((10 * p.loaded) / p.total) : 0;
      if (p.stage === 'rows' && !p.fromCache && tenth !== shown) {
        shown = tenth;
        opts.log(`${what}: ${p.loaded} of ${p.total} bytes`);
      }
    },
  });
  const name = `${what.replace(/[/:@]/g, '_')}.jsonl`;
  const { text } = mixJsonl([{ label: what, records: read.map((r) => rowRecord(r, mapping)) }]);
  return { name, bytes: new TextEncoder().encode(text) };
}
