import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Keyword search attributes every run keeps up to date, so runs can be filtered in the Web UI's list. */
export const PLAYBOOK_ATTRIBUTE = defineSearchAttributeKey('TunnelPlaybook', SearchAttributeType.KEYWORD);
export const STATUS_ATTRIBUTE = defineSearchAttributeKey('TunnelStatus', SearchAttributeType.KEYWORD);
export const STEP_ATTRIBUTE = defineSearchAttributeKey('TunnelStep', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [PLAYBOOK_ATTRIBUTE, STATUS_ATTRIBUTE, STEP_ATTRIBUTE];
