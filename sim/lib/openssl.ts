/**
 * Throwaway certificates for the simulated lab and the tests: P-256 keys, no passphrase. The lab's own
 * certificates come from the certs.generate action, which checks, replaces and reports them.
 */
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface CertOptions {
  subject: string;
  days: number;
  keyOut: string;
  certOut: string;
  /** `-addext` values, e.g. `subjectAltName=DNS:x`. */
  extensions?: string[];
}

/** A self-signed certificate and its key (also usable as a CA). */
export async function selfSigned(options: CertOptions): Promise<void> {
  await execa('openssl', [
    ...['req', '-x509', ...EC_KEY, '-sha256', '-days', String(options.days), '-subj', options.subject],
    ...(options.extensions ?? []).flatMap((ext) => ['-addext', ext]),
    ...['-keyout', options.keyOut, '-out', options.certOut],
  ]);
}

/**
 * A certificate signed by the CA at `ca`, and its key; `csrOut` keeps the request next to them.
 * `extensions` (e.g. a subjectAltName) go into the request and are copied into the certificate.
 */
export async function signedBy(
  ca: { cert: string; key: string },
  options: CertOptions & { csrOut: string },
): Promise<void> {
  await execa('openssl', [
    'req',
    ...EC_KEY,
    '-subj',
    options.subject,
    ...(options.extensions ?? []).flatMap((ext) => ['-addext', ext]),
    '-keyout',
    options.keyOut,
    '-out',
    options.csrOut,
  ]);
  await execa('openssl', [
    ...['x509', '-req', '-in', options.csrOut, '-CA', ca.cert, '-CAkey', ca.key],
    ...(options.extensions ? ['-copy_extensions', 'copy'] : []),
    ...['-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', String(options.days), '-sha256'],
    ...['-out', options.certOut],
  ]);
}
