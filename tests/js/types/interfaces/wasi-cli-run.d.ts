declare module 'wasi:cli/run@0.2.12' {
  /**
   * Run the program.
   */
  export function run(): void;
}
