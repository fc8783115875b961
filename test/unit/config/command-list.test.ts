import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { COMMANDS } from '../../../bin/command-list.js';

describe('the command list', () => {
  it('names each command as its module builds it, with the description --help lists for it', async () => {
    for (const entry of COMMANDS) {
      const cmd = (await entry.load())();
      assert.equal(cmd.name(), entry.name);
      assert.equal(cmd.description(), entry.description);
    }
  });
});
