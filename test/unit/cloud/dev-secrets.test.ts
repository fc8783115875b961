import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { requireServiceSecret } from '../../../cloud/dev-secrets.js';
import { DEV_SERVICE_TOKEN } from '../../../shared/service-token.js';

describe('the development service token', () => {
  it('goes only to gateways on loopback, every one of a list', () => {
    assert.doesNotThrow(() => requireServiceSecret('mqtt://127.0.0.1:1883,mqtt://[::1]:1884,mqtt://localhost', DEV_SERVICE_TOKEN));
    assert.throws(
      () => requireServiceSecret('mqtt://127.0.0.1:1883,mqtt://gw-2.example:1883', DEV_SERVICE_TOKEN),
      /not to gw-2\.example; set FLEET_SERVICE_TOKEN/,
    );
  });

  it('lets a token of its own go anywhere', () => {
    assert.doesNotThrow(() => requireServiceSecret('mqtt://gw-1.example,mqtt://gw-2.example', 'a-secret-of-our-own'));
  });
});
