// A fresh Keyward server per test: its own data directory and port, so
// tests never share state. It is the real binary the README runs.
import { test as base, expect, Page } from '@playwright/test';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const BIN = process.env.KEYWARD_BIN ?? resolve(__dirname, '../../target/debug/keyward');

export type Keyward = { url: string; httpsUrl: string; setupUrl: string; proc: ChildProcess; dataDir: string };

async function start(): Promise<Keyward & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-e2e-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KEYWARD_DATA_DIR: dir,
    KEYWARD_HTTP_ADDR: '127.0.0.1:0',
    KEYWARD_HTTPS_ADDR: '127.0.0.1:0',
    KEYWARD_LOG: process.env.KEYWARD_E2E_LOG ?? 'warn',
    // The webhook tests' receivers listen on 127.0.0.1.
    KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true',
  };
  delete env.DATABASE_URL; // the embedded default
  delete env.KEYWARD_SITE_ROOT; // the console built into the binary
  const proc = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d) => {
    err += d;
    if (process.env.KEYWARD_E2E_LOG) process.stderr.write(d);
  });
  const found = await new Promise<{ url: string; httpsUrl: string; setupUrl: string }>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`keyward did not start:\n${out}\n${err}`)), 20_000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const url = /listening on (\S+)/.exec(out)?.[1];
      const httpsUrl = /HTTPS \(for mTLS clients\) on (\S+)/.exec(out)?.[1];
      const setupUrl = /(http\S+\/setup\?token=\S+)/.exec(out)?.[1];
      if (url && httpsUrl && setupUrl) {
        clearTimeout(timer);
        ok({ url, httpsUrl, setupUrl });
      }
    });
    proc.on('exit', (code) => fail(new Error(`keyward exited (${code}):\n${out}\n${err}`)));
  });
  return { ...found, proc, dir, dataDir: dir };
}

export const test = base.extend<{ keyward: Keyward }>({
  keyward: async ({}, use) => {
    const k = await start();
    await use(k);
    k.proc.kill('SIGTERM');
    await new Promise((r) => k.proc.once('exit', r));
    rmSync(k.dir, { recursive: true, force: true });
  },
});

export { expect };

export const SUPER = { username: 'root-admin', password: 'correct horse battery' };

/** With JavaScript on, wait until the page's own content (not just the
 * frame) has hydrated before interacting. */
/// Waits until the page now in the address bar has hydrated its content:
/// `data-ready` names the page's path and is cleared when a page goes, so
/// after in-app navigation this waits for the new page, not the last one.
export async function ready(page: Page, jsEnabled: boolean) {
  if (jsEnabled) {
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
    const path = new URL(page.url()).pathname;
    await expect(page.locator('body')).toHaveAttribute('data-ready', path);
  }
}

export async function setupApp(page: Page, k: Keyward, jsEnabled: boolean) {
  await page.goto(k.setupUrl);
  await ready(page, jsEnabled);
  await page.getByLabel('Application name').fill('Acme Chat');
  await page.getByLabel('Region').selectOption('sg');
  await page.getByLabel('Username', { exact: true }).fill(SUPER.username);
  await page.getByLabel('Password (at least 12 characters)').fill(SUPER.password);
  await page.getByLabel('Repeat the password').fill(SUPER.password);
  await page.getByRole('button', { name: 'Create application' }).click();
  await expect(page).toHaveURL(/\/login\?setup=done/);
}

export async function signIn(page: Page, jsEnabled: boolean, user = SUPER) {
  await ready(page, jsEnabled);
  await page.getByLabel('Username', { exact: true }).fill(user.username);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/// The 6-digit code an authenticator app shows at `unixMs` (RFC 6238).
export function appCode(secret: string, unixMs: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/\s+/g, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
  const step = Buffer.alloc(8);
  step.writeBigUInt64BE(BigInt(Math.floor(unixMs / 30000)));
  const d = createHmac('sha1', key).update(step).digest();
  const o = d[19] & 0x0f;
  return ((d.readUInt32BE(o) & 0x7fffffff) % 1000000).toString().padStart(6, '0');
}

/** A P-256 key (in a file of its own) and a CSR for it, made by the openssl command line. */
export function makeCsr(cn: string): { csr: string; keyPath: string } {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-csr-'));
  const keyPath = join(dir, 'backend.key');
  const csr = execFileSync('openssl', [
    'req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-subj', `/CN=${cn}`, '-keyout', keyPath,
  ]).toString();
  return { csr, keyPath };
}
