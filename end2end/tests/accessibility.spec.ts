// Every page, at a desktop and a phone width, JavaScript on and off (the
// two projects): axe-core finds no serious or critical violation, and
// nothing is wider than the screen.
import AxeBuilder from '@axe-core/playwright';
import { execFileSync } from 'node:child_process';
import { Browser, Page } from '@playwright/test';
import { test, expect, setupApp, signIn, ready, SUPER, appCode, makeCsr } from './keyward';

const WIDTHS = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
];

/** What axe finds serious or critical, one readable line each. */
async function violations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(' ')} — ${v.help}`));
}

/** Elements that reach past the right edge of the screen (none should). */
async function overflow(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out: string[] = [];
    if (document.documentElement.scrollWidth > width) {
      out.push(`the page is ${document.documentElement.scrollWidth}px wide on a ${width}px screen`);
      for (const el of Array.from(document.body.querySelectorAll('*'))) {
        const r = el.getBoundingClientRect();
        // Only the outermost culprits: a child of one is not news.
        const parent = el.parentElement?.getBoundingClientRect();
        if (r.width > 0 && r.right > width + 1 && !(parent && parent.right > width + 1)) {
          out.push(`${el.tagName.toLowerCase()}${el.className ? '.' + String(el.className).split(' ').join('.') : ''} reaches ${Math.round(r.right)}px`);
        }
      }
    }
    return out;
  });
}

/** Where axe runs. With JavaScript on, the page itself. With it off,
 * Playwright cannot run axe in the page, so the page's static DOM is
 * shown, at the same address and without its scripts, in a page that can. */
async function subject(page: Page, jsEnabled: boolean, browser: Browser): Promise<Page> {
  if (jsEnabled) return page;
  const url = page.url();
  const html = (await page.content()).replace(/<script\b[^>]*>[\s\S]*?<\/script>/gi, '');
  const context = await browser.newContext({ javaScriptEnabled: true });
  const mirror = await context.newPage();
  await mirror.route('**/*', (route) => {
    const req = route.request();
    if (req.url() === url && req.resourceType() === 'document') return route.fulfill({ body: html, contentType: 'text/html' });
    if (/\.(js|wasm)$/.test(new URL(req.url()).pathname)) return route.abort();
    return route.continue();
  });
  await mirror.goto(url);
  return mirror;
}

/** Checks the page now showing at every width; `path` only labels failures. */
async function check(page: Page, jsEnabled: boolean, browser: Browser, path: string, found: string[]) {
  const target = await subject(page, jsEnabled, browser);
  for (const w of WIDTHS) {
    await target.setViewportSize({ width: w.width, height: w.height });
    for (const v of await violations(target)) found.push(`${path} at ${w.width}px: ${v}`);
    if (w.width < 1000) for (const o of await overflow(target)) found.push(`${path} at ${w.width}px: ${o}`);
  }
  if (target === page) await page.setViewportSize({ width: WIDTHS[0].width, height: WIDTHS[0].height });
  else await target.context().close();
}

async function visit(page: Page, url: string, jsEnabled: boolean) {
  await page.goto(url);
  await ready(page, jsEnabled);
}

function createAdmin(dataDir: string) {
  execFileSync(process.env.KEYWARD_BIN ?? `${__dirname}/../../target/debug/keyward`,
    ['admin', 'create', '--username', 'bob-admin', '--role', 'admin', '--password-stdin'],
    { input: 'bob has a long password\n', env: { ...process.env, KEYWARD_DATA_DIR: dataDir, DATABASE_URL: undefined as unknown as string, KEYWARD_LOG: 'warn' } });
}

test('every page passes axe and fits a phone screen', async ({ page, keyward, javaScriptEnabled, browser }) => {
  test.setTimeout(240_000);
  const found: string[] = [];

  // Before setup: the setup page.
  await visit(page, keyward.setupUrl, javaScriptEnabled);
  await check(page, javaScriptEnabled, browser, '/setup', found);

  await setupApp(page, keyward, javaScriptEnabled);
  await check(page, javaScriptEnabled, browser, '/login?setup=done', found);
  createAdmin(keyward.dataDir);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/settings\/integrations$/);
  await ready(page, javaScriptEnabled);

  // Some of everything, so the tables have rows: a server key, a certificate.
  await visit(page, keyward.url + 'settings/integrations?confirm=server-key', javaScriptEnabled);
  await check(page, javaScriptEnabled, browser, '/settings/integrations?confirm=server-key', found);
  await page.getByRole('button', { name: 'Generate', exact: true }).click();
  await expect(page.getByTestId('new-server-key')).toBeVisible();
  await check(page, javaScriptEnabled, browser, '/settings/integrations (a new key shown)', found);

  await visit(page, keyward.url + 'settings/security?do=create', javaScriptEnabled);
  await check(page, javaScriptEnabled, browser, '/settings/security?do=create', found);
  await page.getByLabel('Name').fill('backend');
  await page.getByLabel('Certificate signing request (PEM)').fill(makeCsr('backend-a11y').csr);
  await page.getByRole('button', { name: 'Create certificate' }).click();
  await expect(page.getByTestId('issued')).toContainText('backend');
  await check(page, javaScriptEnabled, browser, '/settings/security (a new certificate shown)', found);
  await visit(page, keyward.url + 'settings/security', javaScriptEnabled);
  await page.getByRole('link', { name: 'Renew…' }).click();
  await expect(page.getByTestId('renew-certificate')).toBeVisible();
  await check(page, javaScriptEnabled, browser, '/settings/security?renew= (a renewal asked for)', found);

  const pages = [
    'settings/integrations',
    'settings/integrations?confirm=secure-mode',
    'settings/security',
    'settings/security?rotate=ca',
    'settings/webhooks',
    'settings/webhooks?do=add',
    'settings/admin-users',
    'settings/admin-users?do=create',
    'settings/admin-users?do=generate',
    'settings/admin-users?do=password',
    'settings/admin-users?do=revoke-other',
    'settings/admin-users?do=disable&username=bob-admin',
    'settings/admin-users?do=temporary&username=bob-admin',
    'settings/password',
    'settings/audit-log',
    'settings/api',
    'settings/no-such-page',
  ];
  for (const path of pages) {
    await visit(page, keyward.url + path, javaScriptEnabled);
    await check(page, javaScriptEnabled, browser, '/' + path, found);
  }

  // An open "…" menu must fit too.
  await visit(page, keyward.url + 'settings/admin-users', javaScriptEnabled);
  await page.locator('details.menu summary').first().click();
  await check(page, javaScriptEnabled, browser, '/settings/admin-users (a menu open)', found);

  // Two-factor sign-in: off, being set up (a QR code), on with its
  // recovery codes shown, and the sign-in's second page.
  await visit(page, keyward.url + 'settings/two-factor', javaScriptEnabled);
  await check(page, javaScriptEnabled, browser, '/settings/two-factor (off)', found);
  await page.getByLabel('Your password').fill(SUPER.password);
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
  await expect(page.getByTestId('totp-secret')).toBeVisible();
  await check(page, javaScriptEnabled, browser, '/settings/two-factor (setting up)', found);
  await page.getByLabel('Code from your app').fill(appCode(await page.getByTestId('totp-secret').inputValue(), Date.now()));
  await page.getByRole('button', { name: 'Turn on two-factor sign-in' }).click();
  await expect(page.getByTestId('recovery-codes')).toBeVisible();
  await check(page, javaScriptEnabled, browser, '/settings/two-factor (on, codes shown)', found);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
  await signIn(page, javaScriptEnabled);
  await expect(page).toHaveURL(/\/login\/second-factor$/);
  await check(page, javaScriptEnabled, browser, '/login/second-factor', found);

  expect(found).toEqual([]);
});
