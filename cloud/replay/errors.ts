import { ConfigError } from '../../shared/config.js';

/**
 * A mistake in the user's CSV or rules file. The fix is in the file, not the code, so the
 * CLI prints only the message (which names file, line or field) and no stack.
 */
export class ReplayInputError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayInputError';
  }
}
