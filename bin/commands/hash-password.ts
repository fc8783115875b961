import type { Command } from 'commander';
import { hashPassword } from '../../cloud/console/passwords.js';
import { ConfigError } from '../../shared/config.js';
import { runCommand } from '../cli-support.js';
import { describedCommand } from '../command-list.js';

const USER_NAME = /^[^:\s]{1,64}$/;

/** Reads the password from stdin (never a flag: it would end up in shell history and `ps`). */
export function hashPasswordCommand(): Command {
  return describedCommand('hash-password')
    .argument('<user>', 'the user name (no spaces or colons)')
    .addHelpText('after', '\nExample: printf %s "$PASSWORD" | fleet hash-password alice')
    .action((user: string) =>
      runCommand(async () => {
        if (!USER_NAME.test(user)) throw new ConfigError('user: must be 1 to 64 characters without spaces or colons');
        const chunks: Buffer[] = [];
        for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
        const password = Buffer.concat(chunks)
          .toString('utf8')
          .replace(/\r?\n$/, '');
        if (password === '') throw new ConfigError('password: stdin was empty');
        process.stdout.write(`${user}:${await hashPassword(password)}\n`);
      }),
    );
}
