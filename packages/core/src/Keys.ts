/**
 * Celery's key layout (`BaseKeyValueStoreBackend`): task, group and chord keys. A key is also the
 * Pub/Sub channel its writes are published on.
 */
export const TASK_KEYPREFIX = "celery-task-meta-"
export const GROUP_KEYPREFIX = "celery-taskset-meta-"

/** How `global_keyprefix` is joined to the prefixes; Celery changed the rule in 5.5. */
export type PrefixSeparatorEra =
  /** 5.3.x–5.4.x: always `p + "_"`. */
  | "5.3"
  /** ≥ 5.5.0: `_` only when `p` does not already end in one of `: _ - .`. */
  | "5.5"

export interface KeyLayoutOptions {
  /** `result_backend_transport_options.global_keyprefix` (Celery ≥ 5.3). */
  readonly globalKeyprefix?: string | undefined
  /** Defaults to the current rule, "5.5". */
  readonly separatorEra?: PrefixSeparatorEra | undefined
}

export interface KeyLayout {
  readonly taskKeyprefix: string
  readonly groupKeyprefix: string
  readonly task: (taskId: string) => string
  readonly group: (groupId: string) => string
  /** The chord join set (`.j`): a ZSET ordered by group_index, or a LIST in unordered mode. */
  readonly chordJoin: (groupId: string) => string
  /** The chord "extra tasks" counter (`.t`), bumped by `add_to_chord`. */
  readonly chordCounter: (groupId: string) => string
  /** The chord size (`.s`). */
  readonly chordSize: (groupId: string) => string
  /** The task id of a task key, if the key is one. */
  readonly taskIdOf: (key: string) => string | undefined
}

const SEPARATORS = new Set([":", "_", "-", "."])

/** The effective global prefix as Celery computes it. */
export const globalPrefix = (options: KeyLayoutOptions): string => {
  const p = options.globalKeyprefix
  if (p === undefined || p === "") return ""
  if ((options.separatorEra ?? "5.5") === "5.3") return `${p}_`
  return SEPARATORS.has(p[p.length - 1]!) ? p : `${p}_`
}

export const make = (options: KeyLayoutOptions = {}): KeyLayout => {
  const prefix = globalPrefix(options)
  const taskKeyprefix = prefix + TASK_KEYPREFIX
  const groupKeyprefix = prefix + GROUP_KEYPREFIX
  return {
    taskKeyprefix,
    groupKeyprefix,
    task: (taskId) => taskKeyprefix + taskId,
    group: (groupId) => groupKeyprefix + groupId,
    chordJoin: (groupId) => `${groupKeyprefix}${groupId}.j`,
    chordCounter: (groupId) => `${groupKeyprefix}${groupId}.t`,
    chordSize: (groupId) => `${groupKeyprefix}${groupId}.s`,
    taskIdOf: (key) => (key.startsWith(taskKeyprefix) ? key.slice(taskKeyprefix.length) : undefined)
  }
}

/** The layout with no global prefix. */
export const standard: KeyLayout = make()
