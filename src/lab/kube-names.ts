/** The shapes Kubernetes accepts for names and labels, as the actions' inputs and the lab file check them. */
import { z } from 'zod';

/** A DNS label (RFC 1123): a namespace's, a Deployment's or a Service's name. */
export const K8S_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A label key: an optional DNS-subdomain prefix and `/`, then a name of up to 63 characters. */
export const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** A label value: up to 63 letters, digits, -, _ or ., alphanumeric at both ends (or empty). */
export const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** A label key in an action's input. */
export const labelKeyInput = z
  .string()
  .regex(LABEL_KEY, 'must be a label key such as istio-injection or example.com/name');

/** A label value in an action's input. */
export const labelValueInput = z
  .string()
  .regex(
    LABEL_VALUE,
    'must be a label value: up to 63 letters, digits, -, _ or ., alphanumeric at both ends',
  );
