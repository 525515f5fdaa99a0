import { cellNote, labWaitText, STATUS_MARKS, type ScenarioResult } from './types.js';

const EVIDENCE_CHARS = 600;

/**
 * Markdown as the Web UI shows it in a frame. The UI (2.42) sizes that frame to the rendered body without
 * its margins, which hides the bottom of a trailing table (the last step's row); a last paragraph holding
 * only a no-break space takes that cut instead.
 */
export function forWebUi(markdown: string): string {
  return `${markdown}\n\n\u00a0`;
}

/**
 * Markdown for the Web UI's "current details": where the run is (step, attempts so far), the last probe
 * or log check and its evidence, and how to resume when paused.
 */
export function renderDetails(state: ScenarioResult, workflowId: string): string {
  const lines = [`**${state.playbook}**: ${state.status}`, ''];
  if (state.waitingForLab) lines.push(`Now: ${labWaitText(state.waitingForLab)}`, '');
  const current = state.steps.filter((s) => s.status === 'running');
  for (const step of current) {
    const retry = step.attempts > 0 ? ` (attempts so far: ${step.attempts})` : '';
    lines.push(`Now: \`${step.id}\` — ${step.summary ?? step.uses}${retry}`);
  }
  if (current.length > 0) lines.push('');
  // The last step that showed evidence, or that failed: what the run saw most recently.
  const lastCheck = [...state.steps]
    .reverse()
    .find((s) => (s.status === 'passed' && s.evidence) || s.status === 'failed');
  if (lastCheck) {
    const evidence = lastCheck.status === 'failed' ? lastCheck.error : lastCheck.evidence?.join('\n');
    lines.push(
      `Last check: ${STATUS_MARKS[lastCheck.status]} \`${lastCheck.id}\` ${lastCheck.summary ?? lastCheck.uses}`,
    );
    if (evidence) lines.push('', '```', evidence.slice(0, EVIDENCE_CHARS), '```');
    lines.push('');
  }
  if (state.status === 'paused' && state.pausedStep) {
    lines.push(
      `Paused at step \`${state.pausedStep}\`: ${state.error ?? 'failed'}`,
      '',
      'Resume with one of:',
      '',
      `- \`tunnel-lab resume ${workflowId} --retry\` (or \`--skip\`, \`--abort\`)`,
      `- \`temporal workflow update execute -w ${workflowId} --name resume --input '{"action":"retry"}'\``,
      '',
    );
  } else if (state.error && state.status !== 'running') {
    lines.push(`Error: ${state.error}`, '');
  }
  if (state.cells) {
    // A matrix run: its cells are child runs (the Web UI lists them under "Relationships").
    lines.push('| cell | status | run |', '| --- | --- | --- |');
    for (const cell of state.cells) {
      const note = cellNote(cell);
      const status = cell.paused ? '⏸ paused' : `${STATUS_MARKS[cell.status]} ${cell.status}`;
      const why = note ? ` — ${note.replace(/\|/g, '\\|')}` : '';
      lines.push(`| ${cell.id} | ${status}${why} | \`${cell.workflowId}\` |`);
    }
    return forWebUi(lines.join('\n'));
  }
  lines.push('| step | action | status | attempts |', '| --- | --- | --- | --- |');
  for (const step of state.steps) {
    const id = step.phase === 'finally' ? `${step.id} (finally)` : step.id;
    lines.push(`| ${id} | ${step.uses} | ${STATUS_MARKS[step.status]} ${step.status} | ${step.attempts} |`);
  }
  if (state.changes) {
    lines.push('', `What the run creates and changes on lab ${state.changes.lab}:`, '');
    for (const step of state.changes.steps) {
      for (const change of step.changes) lines.push(`- \`${step.id}\`: ${change}`);
    }
  }
  return forWebUi(lines.join('\n'));
}
