/**
 * Reads the zod config schema itself, so error messages can say what a key
 * expects ("an integer between 1 and 65535") and which keys a table knows,
 * without repeating any of it by hand.
 */
import { z } from 'zod';
import type { PathSegment } from './keys.js';

/** Strip default/prefault/optional wrappers. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
      s = s.unwrap() as z.ZodType;
    } else {
      return s;
    }
  }
}

/** The (unwrapped) schema that governs `path`, or undefined if the path leaves the schema. */
export function schemaAt(root: z.ZodType, path: readonly PathSegment[]): z.ZodType | undefined {
  let s: z.ZodType = unwrap(root);
  for (const seg of path) {
    if (typeof seg === 'number') {
      if (!(s instanceof z.ZodArray)) return undefined;
      s = unwrap(s.element as z.ZodType);
    } else {
      if (!(s instanceof z.ZodObject)) return undefined;
      const child = (s.shape as Record<string, z.ZodType | undefined>)[seg];
      if (child === undefined || !Object.hasOwn(s.shape, seg)) return undefined;
      s = unwrap(child);
    }
  }
  return s;
}

/** The keys an object schema accepts (camelCase), or [] if `schema` is not an object. */
export function objectKeys(schema: z.ZodType | undefined): string[] {
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

/** Every leaf key path of the schema; arrays contribute their element as index 0. */
export function leafPaths(root: z.ZodType, prefix: PathSegment[] = []): PathSegment[][] {
  const s = unwrap(root);
  if (s instanceof z.ZodObject) {
    return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([k, child]) => leafPaths(child, [...prefix, k]));
  }
  if (s instanceof z.ZodArray && unwrap(s.element as z.ZodType) instanceof z.ZodObject) {
    return leafPaths(s.element as z.ZodType, [...prefix, 0]);
  }
  return [prefix];
}

const SAFE = Number.MAX_SAFE_INTEGER;

function describeNumber(s: z.ZodNumber): string {
  const what = s.isInt ? 'an integer' : 'a number';
  const min = s.minValue ?? -Infinity;
  const max = s.maxValue ?? Infinity;
  const hasMin = Number.isFinite(min) && min > -SAFE;
  const hasMax = Number.isFinite(max) && max < SAFE;
  if (hasMin && hasMax) return `${what} between ${min} and ${max}`;
  if (hasMin) return `${what} >= ${min}`;
  if (hasMax) return `${what} <= ${max}`;
  return what;
}

/** What a value for this schema must look like, in words. */
export function describeSchema(schema: z.ZodType | undefined): string | undefined {
  if (schema === undefined) return undefined;
  const s = unwrap(schema);
  if (s instanceof z.ZodNumber) return describeNumber(s);
  if (s instanceof z.ZodString) return (s.minLength ?? 0) > 0 ? 'a non-empty string' : 'a string';
  if (s instanceof z.ZodBoolean) return 'true or false';
  if (s instanceof z.ZodEnum) {
    const opts = s.options.map((o) => JSON.stringify(o));
    return opts.length === 1 ? opts[0] : `one of ${opts.join(', ')}`;
  }
  if (s instanceof z.ZodLiteral) return JSON.stringify(s.value);
  if (s instanceof z.ZodUnion) {
    const parts = (s.options as z.ZodType[]).map((o) => describeSchema(o));
    return parts.every((p) => p !== undefined) ? `one of ${parts.join(', ')}` : undefined;
  }
  if (s instanceof z.ZodObject) return 'a table';
  if (s instanceof z.ZodArray) {
    const el = unwrap(s.element as z.ZodType);
    if (el instanceof z.ZodObject) return 'an array of tables';
    const inner = describeSchema(el);
    return inner === undefined ? 'an array' : `an array of ${inner}`;
  }
  return undefined;
}

/** A short rendering of a value found in the input, for "got ..." in messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return `a date-time (${String(value)})`;
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'a table';
  return typeof value;
}
