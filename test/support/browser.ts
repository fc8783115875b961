import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's Chromium, headless. Without the networking flags it keeps trying to reach
 * Google's services, which floods a closed network and slows the page under test.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
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
