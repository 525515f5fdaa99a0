import type { ScenarioResult, StepRecord } from './types.js';

const ICONS: Record<StepRecord['status'], string> = {
  pending: '·',
  running: '▶',
  passed: '✔',
  failed: '✘',
  skipped: '↷',
  cancelled: '⊘',
};

/** Markdown for the Web UI's "current details": where the run is, and how to resume it when paused. */
export function renderDetails(state: ScenarioResult, workflowId: string): string {
  const lines = [`**${state.playbook}**: ${state.status}`, ''];
  if (state.status === 'paused' && state.pausedStep) {
    lines.push(
      `Paused at step \`${state.pausedStep}\`: ${state.error ?? 'failed'}`,
      '',
      'Resume with one of:',
      `- \`tunnel-lab resume ${workflowId} --retry\` (or \`--skip\`, \`--abort\`)`,
      `- \`temporal workflow update execute -w ${workflowId} --name resume --input '{"action":"retry"}'\``,
      '',
    );
  } else if (state.error && state.status !== 'running') {
    lines.push(`Error: ${state.error}`, '');
  }
  lines.push('| step | action | status | attempts |', '| --- | --- | --- | --- |');
  for (const step of state.steps) {
    const id = step.phase === 'finally' ? `${step.id} (finally)` : step.id;
    lines.push(`| ${id} | ${step.uses} | ${ICONS[step.status]} ${step.status} | ${step.attempts} |`);
  }
  return lines.join('\n');
}
