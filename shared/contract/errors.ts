/** A contract violation, with a message precise enough to fix the sender. */
export class ContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContractError';
  }
}
