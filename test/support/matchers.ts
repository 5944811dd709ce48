import { expect } from 'vitest';

// vitest types its asymmetric matchers as `any`, which turns the object around them into `any` as well;
// these give `unknown`, so expected objects stay type-checked.
export const stringContaining = (text: string): unknown => expect.stringContaining(text);
export const stringMatching = (pattern: RegExp): unknown => expect.stringMatching(pattern);
export const arrayContaining = (items: readonly unknown[]): unknown => expect.arrayContaining(items as unknown[]);
export const anyInstance = (type: unknown): unknown => expect.any(type);
