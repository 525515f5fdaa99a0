/**
 * The Temporal Web UI (the dev server's, version 2.42) shows a tunnel-lab run as a person sees it: headless
 * Chromium opens the run's page and finds the steps' activities by their summaries.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { runUrl } from '../src/config.js';
import type { ScenarioResult } from '../workflows/types.js';
import { actions } from '../activities/registry.js';
import { runLabel, startScenario } from '../src/client.js';
import { loadPlaybookFile, resolvePlaybookPath } from '../src/playbook/load.js';
import { temporalStart } from './support/processes.js';
import { eventually, root, uniqueQueue, writePlaybook, type TestLab, useWorker } from './support/temporal.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = path.join(root, 'test-artifacts', 'web-ui-run.png');

let lab: TestLab;
useWorker('web-ui', (created) => (lab = created));

async function openBrowser(userDataDir: string): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: install it with \`apt-get install -y --no-install-recommends chromium\``,
    );
  }
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

describe('Temporal Web UI', () => {
  it('shows a finished hello run with its activities named by their summaries', async () => {
    const ui = process.env.TEMPORAL_TEST_UI;
    if (!ui) throw new Error('TEMPORAL_TEST_UI is not set: the jest global setup did not start the Web UI');
    const id = uniqueQueue('web-ui-hello');
    // Started as the CLI starts runs: with the run's summary (playbook, lab) and details (description, vars).
    const input = { playbook: 'hello', lab: 'sim' };
    const plan = await loadPlaybookFile(resolvePlaybookPath('hello', path.join(root, 'playbooks')), {
      playbooksDir: path.join(root, 'playbooks'),
      actions,
    });
    const handle = await startScenario(lab.client, lab.taskQueue, input, id, runLabel(plan, input));
    const result = (await handle.result()) as ScenarioResult;
    expect(result.status).toBe('passed');

    const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'chromium-profile-'));
    const context = await openBrowser(userDataDir);
    try {
      // The page may load nothing from beyond this machine.
      const blocked: string[] = [];
      await context.route('**/*', async (route) => {
        const url = new URL(route.request().url());
        if (['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) || url.protocol === 'data:') {
          await route.continue();
        } else {
          blocked.push(url.href);
          await route.abort();
        }
      });
      const page = await context.newPage();
      await page.goto(runUrl(ui, 'default', id));

      // The header: the run's id and its status.
      await page.getByRole('heading', { name: id }).waitFor({ timeout: 30_000 });
      await page.getByText('Completed', { exact: true }).first().waitFor();
      // The timeline labels each activity "<type> • <summary>", and the summary starts with the step id.
      for (const label of [
        'loadPlaybook • load and validate the playbook',
        'exec • greet: exec echo hi from tunnel-lab',
        'exec • node-version: exec node --version',
        'exec • uname: exec uname -s',
        'exec • cleanup: exec true',
      ]) {
        await page.getByText(label, { exact: true }).first().waitFor({ timeout: 15_000 });
      }
      const text = await page.locator('body').innerText();
      expect(text).toContain('tunnelScenario');
      expect(text).toContain('Activity Task Scheduled');
      // The result panel holds the ScenarioResult with each step's output.
      expect(text).toContain('"stdout": "hi from tunnel-lab"');

      // User Metadata: the run's summary and details, and the current details with every step's row, whole.
      await page.getByText('User Metadata', { exact: true }).first().click();
      await page.getByText('Current Details', { exact: true }).waitFor();
      const frames = await eventually(async () => {
        const seen = await Promise.all(
          (await page.locator('iframe[title="output"]').elementHandles()).map(async (element) => {
            const frame = await element.contentFrame();
            const height = (await element.boundingBox())?.height ?? 0;
            // Evaluated in the page (no DOM types here): its text, and the bottom of its last table row,
            // which the frame must show whole.
            // The UI may replace a frame while it renders: a detached one is read again on the next look.
            const inside = await frame
              ?.evaluate<{ text: string; lastRow?: number }>(
                `({ text: document.body.innerText,
                  lastRow: [...document.querySelectorAll('tr')].at(-1)?.getBoundingClientRect().bottom })`,
              )
              .catch((err: unknown) => {
                if (
                  err instanceof Error &&
                  /Frame was detached|Execution context was destroyed/.test(err.message)
                )
                  return undefined;
                throw err;
              });
            return { height, text: inside?.text ?? '', lastRow: inside?.lastRow };
          }),
        );
        return seen.some((f) => f.text.includes('cleanup (finally)')) ? seen : undefined;
      });
      expect(frames.map((f) => f.text.trim()).filter(Boolean)[0]).toBe('hello on lab sim');
      const details = frames.find((f) => f.text.includes('greeting'));
      const current = frames.find((f) => f.text.includes('cleanup (finally)'));
      expect(details?.text).toContain('The smallest playbook');
      expect(current?.text).toMatch(/^hello: passed/);
      for (const frame of [details!, current!]) {
        expect(frame.lastRow).toBeDefined();
        expect(frame.lastRow!).toBeLessThanOrEqual(frame.height);
      }

      mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT });
      expect(existsSync(SCREENSHOT)).toBe(true);
      expect(blocked).toEqual([]);
    } finally {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('lists a matrix run started by `temporal workflow start` with its cells as child runs', async () => {
    const ui = process.env.TEMPORAL_TEST_UI;
    if (!ui) throw new Error('TEMPORAL_TEST_UI is not set: the jest global setup did not start the Web UI');
    const playbook = await writePlaybook(
      'ui-grid',
      [
        'name: ui-grid',
        'vars: { n: 1 }',
        'matrix: { axes: { n: [1, 2] } }',
        'steps:',
        "  - { id: say, uses: exec, with: { command: [echo, 'n=${{ vars.n }}'] } }",
        '',
      ].join('\n'),
    );
    const id = uniqueQueue('web-ui-matrix');
    await temporalStart(lab.taskQueue, id, JSON.stringify({ playbook }));
    const result = (await lab.client.workflow.getHandle(id).result()) as ScenarioResult;
    expect(result.cells!.map((c) => [c.workflowId, c.status])).toEqual([
      [`${id}.1`, 'passed'],
      [`${id}.2`, 'passed'],
    ]);

    const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'chromium-profile-'));
    const context = await openBrowser(userDataDir);
    try {
      const page = await context.newPage();
      await page.goto(runUrl(ui, 'default', id));
      await page.getByRole('heading', { name: id }).waitFor({ timeout: 30_000 });
      // The run's relationships: its two cells, each a child run of its own.
      await page.getByText('Relationships').first().click();
      for (const cell of result.cells!) {
        await page.getByText(cell.workflowId).first().waitFor({ timeout: 15_000 });
      }
      // A cell's page names the matrix run as its parent.
      await page.goto(runUrl(ui, 'default', `${id}.2`));
      await page.getByRole('heading', { name: `${id}.2` }).waitFor({ timeout: 30_000 });
      await page.getByText('Relationships').first().click();
      await page.getByText(id, { exact: true }).first().waitFor({ timeout: 15_000 });
    } finally {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
