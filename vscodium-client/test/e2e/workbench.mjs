// Real VS Code workbenches (code-server) in Debian's chromium, driven by playwright-core for
// tests/test_vscode_extension.py. One JSON request per line on stdin ({id, op, ...}), one
// reply per line on stdout ({id, ok, result | error}). No browser is downloaded: the
// executable is $NOVA_CHROMIUM or `chromium` on PATH.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function findChromium() {
  if (process.env.NOVA_CHROMIUM) return process.env.NOVA_CHROMIUM;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of ['chromium', 'chromium-browser']) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // next
      }
    }
  }
  throw new Error('chromium not found on PATH');
}

let browser;
const pages = new Map(); // name -> { page, logs }

function entry(name) {
  const found = pages.get(name);
  if (found === undefined) throw new Error(`no page ${name}`);
  return found;
}

// The editor's text as rendered (one div per line; VS Code renders spaces as U+00A0).
const EDITOR_TEXT = () => {
  const editor = document.querySelector('.editor-instance .monaco-editor .view-lines');
  if (editor === null) return null;
  const lines = [...editor.querySelectorAll('.view-line')]
    .map((line) => ({ top: parseFloat(line.style.top || '0'), text: line.textContent ?? '' }))
    .sort((a, b) => a.top - b.top);
  return lines.map((line) => line.text.replace(/\u00a0/g, ' ')).join('\n');
};

function participantsPane(page) {
  return page.locator('.pane').filter({ has: page.locator('.pane-header h3.title', { hasText: /^Nova Collab$/i }) }).first();
}

const ops = {
  async launch() {
    browser = await chromium.launch({ executablePath: findChromium(), headless: true, args: FLAGS, timeout: 60_000 });
    return { version: browser.version() };
  },
  async open({ page: name, url }) {
    const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
    const page = await context.newPage();
    const logs = [];
    page.on('console', (message) => logs.push(message.text()));
    pages.set(name, { page, logs });
    const started = Date.now();
    // A busy machine can take long to serve the first workbench page: a generous deadline.
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 80_000 });
    await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: 80_000 });
    return { ms: Date.now() - started };
  },
  async command({ page: name, title, input, timeoutMs = 30_000 }) {
    const { page } = entry(name);
    const box = page.locator('.quick-input-widget input');
    const deadline = Date.now() + timeoutMs;
    // The palette can open before the workbench has every contribution: retry until listed.
    for (;;) {
      await page.keyboard.press('Escape');
      await page.keyboard.press('F1');
      await box.waitFor({ state: 'visible', timeout: timeoutMs });
      const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
      try {
        // A starved renderer can miss one fill: that is retried like a command not listed yet.
        await box.fill(`>${title}`, { timeout: 10_000 });
        await row.waitFor({ timeout: 5000 });
        break;
      } catch (error) {
        if (Date.now() > deadline) {
          await page.screenshot({ path: `${process.env.NOVA_ARTIFACTS ?? '.'}/vscode-${name}-palette.png` });
          throw error;
        }
      }
    }
    await page.keyboard.press('Enter');
    if (input !== undefined) {
      await page.waitForTimeout(300);
      await box.waitFor({ state: 'visible', timeout: timeoutMs });
      await box.fill(input);
      await page.keyboard.press('Enter');
    }
    return null;
  },
  async open_explorer_file({ page: name, file, timeoutMs = 60_000 }) {
    const { page } = entry(name);
    const row = page.locator(`.explorer-folders-view .monaco-list-row[aria-label="${file}"]`).first();
    await row.waitFor({ state: 'visible', timeout: timeoutMs });
    await row.dblclick();
    await page.waitForSelector('.editor-instance .monaco-editor .view-lines', { timeout: timeoutMs });
    return null;
  },
  async click_editor({ page: name, line = 0, end = false }) {
    const { page } = entry(name);
    const lines = page.locator('.editor-instance .monaco-editor .view-line');
    await lines.nth(line).click();
    await page.keyboard.press(end ? 'End' : 'Home');
    return null;
  },
  async press({ page: name, key }) {
    await entry(name).page.keyboard.press(key);
    return null;
  },
  async type({ page: name, text, delay = 20 }) {
    await entry(name).page.keyboard.type(text, { delay });
    return null;
  },
  async editor_text({ page: name }) {
    return entry(name).page.evaluate(EDITOR_TEXT);
  },
  async wait_editor_contains({ page: name, text, timeoutMs = 20_000 }) {
    const { page } = entry(name);
    const started = Date.now();
    await page.waitForFunction(
      ([fn, want]) => (new Function(`return (${fn})()`)() ?? '').includes(want),
      [EDITOR_TEXT.toString(), text],
      { timeout: timeoutMs, polling: 20 },
    );
    return { ms: Date.now() - started };
  },
  async cursor_labels({ page: name }) {
    return entry(name).page.evaluate(() => {
      const labels = new Set();
      for (const el of document.querySelectorAll('.editor-instance .monaco-editor .view-lines span')) {
        for (const pseudo of ['::after', '::before']) {
          const content = getComputedStyle(el, pseudo).content;
          if (content && content !== 'none' && content !== 'normal') labels.add(content.replace(/^"|"$/g, '').trim());
        }
      }
      return [...labels];
    });
  },
  // The name flags of remote cursors: their text and whether they take inline space.
  async cursor_flags({ page: name }) {
    return entry(name).page.evaluate(() => {
      const flags = [];
      for (const el of document.querySelectorAll('.editor-instance .monaco-editor .view-lines span')) {
        const style = getComputedStyle(el, '::after');
        const content = style.content;
        if (!content || content === 'none' || content === 'normal') continue;
        // An inline name would widen its (empty-range) span; a floating one leaves it 0 px wide.
        flags.push({ text: content.replace(/^"|"$/g, '').trim(), position: style.position, width: el.getBoundingClientRect().width });
      }
      return flags;
    });
  },
  // A command that asks for input (an input box or a quick pick): waits for the command's own
  // box (by its placeholder, so never the closing palette) before answering.
  async command_input({ page: name, title, placeholder, input, timeoutMs = 90_000 }) {
    const { page } = entry(name);
    await ops.command({ page: name, title, timeoutMs });
    const box = page.locator(`.quick-input-widget input[placeholder="${placeholder}"]`);
    await box.waitFor({ state: 'visible', timeout: timeoutMs });
    await box.fill(input);
    await box.press('Enter');
    return null;
  },
  // Host controls (tests/test_vscode_host_controls.py): notification toasts and terminals.
  async click_notification({ page: name, text, button, timeoutMs = 90_000 }) {
    const toast = entry(name).page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
    await toast.waitFor({ state: 'visible', timeout: timeoutMs });
    await toast.locator('.monaco-button', { hasText: button }).first().click();
    return null;
  },
  async wait_notification({ page: name, text, timeoutMs = 90_000 }) {
    const toast = entry(name).page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
    await toast.waitFor({ state: 'visible', timeout: timeoutMs });
    return toast.textContent();
  },
  // The visible rows contain `text` (after the last `after`, when given).
  async wait_terminal_contains({ page: name, text, after = '', timeoutMs = 90_000 }) {
    const { page } = entry(name);
    await page.waitForFunction(
      ([want, mark]) => [...document.querySelectorAll('.terminal-wrapper.active .xterm-rows > div')]
        .map((row) => (row.textContent ?? '').replace(/\u00a0/g, ' ')).join('\n').split(mark || '\u0000').pop().includes(want),
      [text, after],
      { timeout: timeoutMs, polling: 50 },
    );
    return null;
  },
  async terminal_text({ page: name }) {
    return entry(name).page.evaluate(() => [...document.querySelectorAll('.terminal-wrapper.active .xterm-rows > div')]
      .map((row) => (row.textContent ?? '').replace(/\u00a0/g, ' ')).join('\n'));
  },
  // Focus out of a terminal (the palette's Escape would otherwise reach its shell).
  async focus_explorer({ page: name }) {
    await entry(name).page.locator('.explorer-folders-view').first().click();
    return null;
  },
  async focus_terminal({ page: name, timeoutMs = 10_000 }) {
    const { page } = entry(name);
    await page.locator('.terminal-wrapper.active .xterm-screen').first().click();
    // Keys typed before xterm has focus are lost: wait for it.
    await page.locator('.terminal-wrapper.active .xterm.focus').first().waitFor({ timeout: timeoutMs });
    return null;
  },
  async status_text({ page: name }) {
    return entry(name).page.evaluate(() =>
      [...document.querySelectorAll('.statusbar-item')].map((item) => item.textContent?.trim() ?? '').filter((t) => t.includes('Nova')),
    );
  },
  // Keystroke in one workbench to the character shown in the other, `count` times. The clocks
  // that matter are in the pages: the key event as the source page dispatches it (a capture
  // listener), and the moment the target page's DOM shows the text (a MutationObserver, no
  // polling delay). With the extension's trace on (NOVA_TRACE_LATENCY=1) each sample is split
  // at the source's binding (key in the Y.Text and on the socket) and the target's (update
  // received, editor asked to apply it, change event back). All clocks are this machine's.
  async latency({ from, to, count = 30 }) {
    const source = entry(from);
    const target = entry(to);
    await source.page.evaluate(() => {
      window.__novaKeys = [];
      if (window.__novaKeyHook) return;
      window.__novaKeyHook = true;
      window.addEventListener('keydown', () => window.__novaKeys.push(Date.now()), true);
    });
    // Records when the page's editor first shows `want` (Date.now() in the page).
    const watch = (page, want) =>
      page.evaluate(
        ([fn, text]) => {
          const editorText = new Function(`return (${fn})`)();
          const state = { want: text, at: undefined };
          // A promise the test awaits (no polling: it would load the renderer it measures).
          state.done = new Promise((resolve) => (state.resolve = resolve));
          window.__novaWatch = state;
          const check = () => {
            if (state.at !== undefined || !(editorText() ?? '').includes(state.want)) return;
            state.at = Date.now();
            observer.disconnect();
            state.resolve(state.at);
          };
          const observer = new MutationObserver(check);
          const root = document.querySelector('.editor-instance .monaco-editor .view-lines') ?? document.body;
          observer.observe(root, { subtree: true, childList: true, characterData: true });
          check();
        },
        [EDITOR_TEXT.toString(), want],
      );
    const seen = (page) =>
      Promise.race([
        page.evaluate(() => window.__novaWatch.done),
        new Promise((_, reject) => setTimeout(() => reject(new Error('text not shown within 20 s')), 20_000).unref()),
      ]);
    // One key per sample: an anchor first (not measured), then each key extends the run.
    const keys = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
    let marker = 'Zq';
    await watch(target.page, marker);
    await source.page.keyboard.type(marker, { delay: 0 });
    await seen(target.page);
    const windows = [];
    for (let i = 0; i < count; i += 1) {
      const key = keys[i % keys.length];
      marker += key;
      await Promise.all([watch(target.page, marker), watch(source.page, marker)]);
      const started = Date.now();
      await source.page.keyboard.type(key, { delay: 0 });
      const [rendered, sourceShown] = await Promise.all([seen(target.page), seen(source.page)]);
      windows.push({ started, rendered, sourceShown });
    }
    const keydowns = await source.page.evaluate(() => window.__novaKeys);
    // The extension writes its trace in batches once a document is quiet (latencyTrace.ts):
    // `nova-trace-batch local:<ms> received:<ms> ...`.
    // The workbench prefixes extension host lines (e.g. "[Extension Host]"): search, not anchor.
    const traces = (logs, direction) =>
      logs.flatMap((line) => {
        const at = line.indexOf('nova-trace-batch ');
        if (at < 0) return [];
        return [...line.slice(at).matchAll(new RegExp(`\\b${direction}:(\\d+)\\b`, 'g'))].map((match) => Number(match[1]));
      });
    // The extension hosts' console lines reach the page a little later (batched once the document
    // is quiet): wait for the last sample's.
    const last = windows[windows.length - 1];
    const deadline = Date.now() + 10_000;
    const traced = () =>
      traces(target.logs, 'remote').some((t) => t >= last.started) && traces(source.logs, 'local').some((t) => t >= last.started);
    while (Date.now() < deadline && !traced()) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const sent = traces(source.logs, 'local');
    const received = traces(target.logs, 'received');
    const applying = traces(target.logs, 'applying');
    const applied = traces(target.logs, 'remote');
    return windows.map(({ started, rendered, sourceShown }) => {
      // The sample's one key: the last trace inside its window.
      const inWindow = (times, end = rendered) => times.filter((t) => t >= started && t <= end).pop();
      const k = inWindow(keydowns);
      const total = rendered - started;
      if (k === undefined) return { total };
      const sample = { total, keystroke: rendered - k, cdp: k - started, sourceScreen: sourceShown - k };
      const s = inWindow(sent);
      const r = inWindow(received);
      const p = inWindow(applying);
      const a = p === undefined ? undefined : applied.find((t) => t >= p);
      if (s === undefined || r === undefined || p === undefined || !(k <= s && s <= r && r <= p)) return sample;
      return { ...sample, input: s - k, network: r - s, schedule: p - r, apply: rendered - p, echo: a === undefined ? undefined : a - p };
    });
  },
  // The participants view ("Nova Collab" in the explorer), expanded: its rows' label and description.
  async participants({ page: name }) {
    const pane = participantsPane(entry(name).page);
    const header = pane.locator('.pane-header').first();
    await header.waitFor({ state: 'visible', timeout: 20_000 });
    if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
    return pane.locator('.monaco-list-row').evaluateAll((rows) =>
      rows.map((row) => ({
        label: row.querySelector('.label-name')?.textContent?.trim() ?? '',
        description: row.querySelector('.label-description')?.textContent?.trim() ?? '',
      })),
    );
  },
  // Clicks a participant's row, or one of its inline actions (by title).
  async participant_action({ page: name, participant, action }) {
    const row = participantsPane(entry(name).page).locator('.monaco-list-row', { hasText: participant }).first();
    await row.waitFor({ state: 'visible', timeout: 20_000 });
    if (action === undefined) {
      await row.click();
      return null;
    }
    await row.hover();
    await row.locator(`.actions .action-label[aria-label^="${action}"]`).click({ timeout: 10_000 });
    return null;
  },
  async active_tab({ page: name }) {
    const tab = entry(name).page.locator('.tabs-container .tab.active').first();
    return (await tab.count()) === 0 ? null : await tab.getAttribute('data-resource-name');
  },
  async editor_selection({ page: name }) {
    const item = entry(name).page.locator('[id="status.editor.selection"]').first();
    return (await item.count()) === 0 ? null : (await item.textContent())?.trim() ?? null;
  },
  // The CodeLens rows shown in the editor (each lens's text; codicons render as empty text).
  async codelens_texts({ page: name }) {
    return entry(name).page.evaluate(() =>
      [...document.querySelectorAll('.editor-instance .monaco-editor .codelens-decoration a, .editor-instance .monaco-editor .codelens-decoration span')]
        .map((el) => (el.textContent ?? '').replace(/\u00a0/g, ' ').trim())
        .filter((text) => text !== ''),
    );
  },
  async click_codelens({ page: name, text, timeoutMs = 20_000 }) {
    const { page } = entry(name);
    const link = page.locator('.editor-instance .monaco-editor .codelens-decoration a', { hasText: text }).first();
    await link.waitFor({ state: 'visible', timeout: timeoutMs });
    await link.click();
    return null;
  },
  // Reloads the workbench page (the extension host restarts; settings are read afresh).
  async reload({ page: name }) {
    const { page } = entry(name);
    await page.reload({ waitUntil: 'domcontentloaded', timeout: 80_000 });
    await page.waitForSelector('.monaco-workbench .part.statusbar', { timeout: 80_000 });
    return null;
  },
  // Closes the active editor tab with its own close button (a palette title can match several commands).
  async close_active_editor({ page: name, timeoutMs = 20_000 }) {
    const { page } = entry(name);
    const close = page.locator('.tabs-container .tab.active .tab-actions .action-label').first();
    await close.click({ timeout: timeoutMs });
    return null;
  },
  // Some element matching `selector` shows `text` (a notification, a view's rows).
  async wait_text({ page: name, selector, text, timeoutMs = 20_000 }) {
    const { page } = entry(name);
    try {
      await page.waitForFunction(
        ([css, want]) => [...document.querySelectorAll(css)].some((el) => (el.textContent ?? '').includes(want)),
        [selector, text],
        { timeout: timeoutMs, polling: 50 },
      );
    } catch (error) {
      await page.screenshot({ path: `${process.env.NOVA_ARTIFACTS ?? '.'}/vscode-${name}-wait-text.png` });
      throw error;
    }
    return null;
  },
  // A diff editor is open and shows `text`.
  async wait_diff_shows({ page: name, text, timeoutMs = 20_000 }) {
    const { page } = entry(name);
    try {
      await page.waitForFunction(
        (want) => {
          const diff = document.querySelector('.monaco-diff-editor');
          return (diff?.textContent ?? '').replace(/\u00a0/g, ' ').includes(want);
        },
        text,
        { timeout: timeoutMs, polling: 50 },
      );
    } catch (error) {
      await page.screenshot({ path: `${process.env.NOVA_ARTIFACTS ?? '.'}/vscode-${name}-diff.png` });
      throw error;
    }
    return null;
  },
  async screenshot({ page: name, path }) {
    await entry(name).page.screenshot({ path });
    return path;
  },
  async logs({ page: name }) {
    return entry(name).logs;
  },
  async close() {
    await browser?.close();
    return null;
  },
};

const write = (reply) => process.stdout.write(`${JSON.stringify(reply)}\n`);
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const request = JSON.parse(line);
  const op = ops[request.op];
  if (op === undefined) {
    write({ id: request.id, ok: false, error: `unknown op ${request.op}` });
    return;
  }
  op(request).then(
    (result) => write({ id: request.id, ok: true, result: result ?? null }),
    (error) => write({ id: request.id, ok: false, error: String(error?.stack ?? error) }),
  );
});
lines.on('close', () => {
  void Promise.resolve(browser?.close()).finally(() => process.exit(0));
});
