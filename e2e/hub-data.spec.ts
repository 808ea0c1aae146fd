/**
 * Instruction datasets from the Hugging Face Hub, against a stand-in Hub (context.route serving the
 * Parquet listing, HEAD and range requests: src/test/hub-datasets.ts): a missing dataset's message;
 * an official-layout dataset recognised and typed from its task_type column; a gated one refused
 * without a token, then mapped by hand and typed with one name; both mixed into the training data
 * (the section passes axe); a third download cancelled half way, which leaves the mix as it was;
 * the mix downloaded as one JSON Lines file and trained a few steps; a dataset taken out of it; the token never in a URL; the next visit reads the rows from the cache
 * without a request.
 */
import { readFile } from 'node:fs/promises';
import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { standInAnswer, type StandInDataset, stringParquet } from '../src/test/hub-datasets';
import { LOCAL, openApp, recordRequests } from './app';

interface DemoRecord {
  instruction: string;
  input: string;
  output: string;
  type: string;
}

test('datasets from the Hub are looked up, mapped, typed, mixed, trained on and cached', async ({ page, context }, testInfo) => {
  const demo = (await readFile('public/data/demo-train.jsonl', 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as DemoRecord);
  const facts = demo.filter((r) => r.type === 'world knowledge').slice(0, 16);
  const reviews = demo.filter((r) => r.type === 'sentiment').slice(0, 16);
  const token = 'hf_e2e_secret_token';
  const datasets: Record<string, StandInDataset> = {
    // The official layout, task_type 1 (world knowledge), in two row groups of 8.
    'test-org/facts': {
      splits: {
        default: {
          train: [stringParquet({ instruction: facts.map((r) => r.instruction), input: facts.map(() => ''), output: facts.map((r) => r.output), task_type: facts.map(() => '1') }, 8)],
        },
      },
    },
    // Columns no layout knows, behind a token.
    'test-org/reviews': {
      token,
      splits: {
        default: {
          train: [stringParquet({ question: reviews.map((r) => r.instruction), text: reviews.map((r) => r.input), label: reviews.map((r) => r.output) }, 8)],
        },
      },
    },
  };
  // A copy of facts whose row reads wait, while `hold` is set, until the test lets them go (to cancel one).
  datasets['test-org/slow'] = datasets['test-org/facts'];
  let hold = false;
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  const hubHits: { url: string; authorization: string | null }[] = [];
  await context.route('https://huggingface.co/**', async (route) => {
    const req = route.request();
    const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': 'authorization, range', 'access-control-expose-headers': 'content-length, content-range' };
    if (req.method() === 'OPTIONS') {
      await route.fulfill({ status: 204, headers: { ...cors, 'access-control-allow-methods': 'GET, HEAD' } });
      return;
    }
    const headers = await req.allHeaders();
    hubHits.push({ url: req.url(), authorization: headers.authorization ?? null });
    if (hold && req.url().includes('/slow/parquet/') && headers.range) await released;
    const a = standInAnswer(datasets, { method: req.method(), url: req.url(), range: headers.range ?? null, authorization: headers.authorization ?? null });
    // A request the page cancelled meanwhile can no longer be answered.
    await route
      .fulfill({ status: a.status, body: a.body === undefined ? undefined : typeof a.body === 'string' ? a.body : Buffer.from(a.body), headers: { ...cors, ...a.headers } })
      .catch(() => undefined);
  });
  const requests = recordRequests(context);
  await openApp(page, '?batch=4&steps=3&ckpt=3&routing=3&maxlen=48');
  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await page.locator('[data-testid=hub-data] > summary').click();
  expect(hubHits, 'no Hub request before the user asks').toEqual([]);

  // A dataset that is not there.
  await page.getByTestId('hub-data-name').fill('test-org/missing');
  await page.getByTestId('hub-data-inspect').click();
  await expect(page.getByTestId('hub-data-error')).toContainText('test-org/missing: no such dataset on the Hugging Face Hub (HTTP 404)');

  // The official layout: recognised, typed from task_type; 10 of its 16 rows.
  await page.getByTestId('hub-data-name').fill('test-org/facts');
  await page.getByTestId('hub-data-inspect').click();
  await expect(page.getByTestId('hub-data-info')).toHaveAttribute('data-layout', 'official');
  await expect(page.getByTestId('hub-data-type-source')).toHaveValue('column:task_type');
  await page.getByTestId('hub-data-rows').fill('10');
  await page.getByTestId('hub-data-add').click();
  await expect(page.getByTestId('dataset-name')).toHaveText('test-org_facts_default_train.jsonl');
  await expect(page.locator('[data-testid=type-count][data-type="world knowledge"]')).toHaveAttribute('data-count', '10');

  // A gated dataset: refused without the token; with it, mapped by hand and given one type.
  await page.getByTestId('hub-data-name').fill('test-org/reviews');
  await page.getByTestId('hub-data-inspect').click();
  await expect(page.getByTestId('hub-data-error')).toContainText('test-org/reviews: the dataset is gated or private (HTTP 401); give a Hugging Face access token');
  await page.getByTestId('hub-data-token').fill(token);
  await page.getByTestId('hub-data-inspect').click();
  await expect(page.getByTestId('hub-data-info')).toHaveAttribute('data-layout', 'custom');
  await expect(page.getByTestId('hub-data-mapping-error')).toContainText('choose the instruction column');
  await page.getByTestId('hub-data-col-instruction').selectOption('question');
  await page.getByTestId('hub-data-col-input').selectOption('text');
  await page.getByTestId('hub-data-col-output').selectOption('label');
  await page.getByTestId('hub-data-type-name').fill('sentiment');
  await page.getByTestId('hub-data-rows').fill('12');
  await page.getByTestId('hub-data-add').click();
  await expect(page.getByTestId('dataset-name')).toHaveText('hub-mix-2-datasets.jsonl');
  await expect(page.getByTestId('hub-data-part')).toHaveCount(2);
  await expect(page.locator('[data-testid=type-count][data-type="sentiment"]')).toHaveAttribute('data-count', '12');
  await expect(page.locator('[data-testid=type-count][data-type="world knowledge"]')).toHaveAttribute('data-count', '10');
  await expect(page.getByTestId('dataset-counts')).toHaveAttribute('data-bad', '0');

  // The mix downloads as the file it was loaded as (the runner trains on it with --data).
  const [mixFile] = await Promise.all([page.waitForEvent('download'), page.getByTestId('hub-data-download').click()]);
  expect(mixFile.suggestedFilename()).toBe('hub-mix-2-datasets.jsonl');
  const mixLines = (await readFile((await mixFile.path())!, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as DemoRecord);
  expect(mixLines).toHaveLength(22);
  expect(mixLines[0]).toEqual({ instruction: facts[0].instruction, input: '', output: facts[0].output, type: '1' });
  expect(mixLines[10]).toEqual({ instruction: reviews[0].instruction, input: reviews[0].input, output: reviews[0].output, type: 'sentiment' });
  await page.getByTestId('data-panel').screenshot({ path: testInfo.outputPath('hub-data-mix.png') });

  // The section passes axe with the form, the mix and an error on screen.
  const axe = await new AxeBuilder({ page }).include('[data-testid=hub-data]').analyze();
  expect(axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help}`)).toEqual([]);

  // A download cancelled half way adds nothing: the mix and the training data stay as they were.
  await page.getByTestId('hub-data-name').fill('test-org/slow');
  await page.getByTestId('hub-data-inspect').click();
  await expect(page.getByTestId('hub-data-info')).toHaveAttribute('data-layout', 'official');
  hold = true;
  await page.getByTestId('hub-data-add').click();
  await page.getByTestId('hub-data-cancel').click();
  await expect(page.getByTestId('hub-data-error')).toContainText('Cancelled: nothing was added; the training data is as it was.');
  hold = false;
  release();
  await expect(page.getByTestId('dataset-name')).toHaveText('hub-mix-2-datasets.jsonl');
  await expect(page.getByTestId('hub-data-part')).toHaveCount(2);

  // Train a few steps on the mix.
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done', { timeout: 150_000 });
  await expect(page.getByTestId('run-step')).toHaveAttribute('data-value', '3');

  // The token went in a header, to the gated dataset only, and never into a URL (the page's included).
  expect(hubHits.filter((h) => h.url.includes('/reviews/parquet/') && h.authorization === `Bearer ${token}`).length).toBeGreaterThan(0);
  expect(requests.some((u) => u.includes(token))).toBe(false);
  expect(page.url()).not.toContain(token);
  const outside = requests.filter((u) => !LOCAL.test(u));
  expect(outside.every((u) => u.startsWith('https://huggingface.co/')), `only the Hub, on request: ${outside.join(', ')}`).toBe(true);

  // Taking a dataset out of the mix loads the rest as the training data.
  await page.locator('[data-testid=hub-data-part][data-label="test-org/reviews:default@train"] [data-testid=hub-data-remove]').click();
  await expect(page.getByTestId('dataset-name')).toHaveText('test-org_facts_default_train.jsonl');
  await expect(page.getByTestId('dataset-counts')).toHaveAttribute('data-good', '10');

  // The next visit: the same rows come from the cache, without a request.
  await page.reload();
  await expect(page.getByTestId('kernel-check')).toHaveAttribute('data-passed', 'true');
  await page.locator('[data-testid=hub-data] > summary').click();
  await expect(page.locator('[data-testid=hub-data-cache-entry][data-repo="test-org/facts"]')).toHaveCount(1);
  const before = hubHits.length;
  await page.getByTestId('hub-data-name').fill('test-org/facts');
  await page.getByTestId('hub-data-inspect').click();
  await page.getByTestId('hub-data-rows').fill('10');
  await page.getByTestId('hub-data-add').click();
  await expect(page.getByTestId('dataset-name')).toHaveText('test-org_facts_default_train.jsonl');
  expect(hubHits.length).toBe(before);
});
