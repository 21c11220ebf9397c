// The README's screenshots, taken from a real server with some of
// everything on it. Not part of the test run: take them again with
//   cd end2end && KEYWARD_SCREENSHOTS=1 npx playwright test screenshots --project js-on
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Page } from '@playwright/test';
import { test, expect, setupApp, signIn, ready, SUPER, appCode } from './keyward';

const DOCS = resolve(__dirname, '../../docs');

function csr(cn: string): string {
  return execFileSync('openssl', [
    'req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-subj', `/CN=${cn}`, '-keyout', '/dev/null',
  ]).toString();
}

async function shot(page: Page, url: string, file: string, width: number, height: number) {
  await page.setViewportSize({ width, height });
  await page.goto(url);
  await ready(page, true);
  await page.screenshot({ path: `${DOCS}/${file}`, fullPage: width < 600 });
}

test('README screenshots', async ({ page, keyward, javaScriptEnabled }) => {
  test.skip(!process.env.KEYWARD_SCREENSHOTS || !javaScriptEnabled, 'taken on request only (KEYWARD_SCREENSHOTS=1)');
  test.setTimeout(120_000);
  await setupApp(page, keyward, true);
  execFileSync(process.env.KEYWARD_BIN ?? `${__dirname}/../../target/debug/keyward`,
    ['admin', 'create', '--username', 'ops-oncall', '--role', 'admin', '--password-stdin'],
    { input: 'ops has a long password\n', env: { ...process.env, KEYWARD_DATA_DIR: keyward.dataDir, DATABASE_URL: undefined as unknown as string, KEYWARD_LOG: 'warn' } });
  await signIn(page, true);
  await expect(page).toHaveURL(/integrations$/);

  for (const name of ['billing backend', 'chat backend']) {
    await page.goto(keyward.url + 'settings/integrations?confirm=server-key');
    await ready(page, true);
    await page.getByLabel(/^Name/).fill(name);
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    await expect(page.getByTestId('new-server-key')).toBeVisible();
  }
  await page.goto(keyward.url + 'settings/integrations?confirm=secure-mode');
  await ready(page, true);
  await page.getByRole('button', { name: 'Turn secure mode on' }).click();
  await expect(page.getByTestId('secure-mode-state')).toHaveText('On');

  await page.goto(keyward.url + 'settings/security?do=create');
  await ready(page, true);
  await page.getByLabel('Name').fill('chat-backend-2026');
  await page.getByLabel('Certificate signing request (PEM)').fill(csr('chat-backend'));
  await page.getByRole('button', { name: 'Create certificate' }).click();
  await expect(page.getByTestId('issued')).toBeVisible();

  await shot(page, keyward.url + 'settings/integrations', 'integrations.png', 1280, 900);
  await shot(page, keyward.url + 'settings/security', 'security.png', 1280, 900);
  await shot(page, keyward.url + 'settings/admin-users', 'admin-users.png', 1280, 720);
  await shot(page, keyward.url + 'settings/audit-log', 'audit-log.png', 1280, 900);
  await shot(page, keyward.url + 'settings/admin-users', 'admin-users-phone.png', 390, 844);

  // Two-factor sign-in: setting up the authenticator app, then on.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(keyward.url + 'settings/two-factor');
  await ready(page, true);
  await page.getByLabel('Your password').fill(SUPER.password);
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
  await expect(page.getByTestId('totp-secret')).toBeVisible();
  await page.screenshot({ path: `${DOCS}/two-factor-set-up.png` });
  await page.getByLabel('Code from your app').fill(appCode(await page.getByTestId('totp-secret').inputValue(), Date.now()));
  await page.getByRole('button', { name: 'Turn on two-factor sign-in' }).click();
  await expect(page.getByTestId('recovery-codes')).toBeVisible();
  await page.screenshot({ path: `${DOCS}/two-factor-on.png` });
});
