/**
 * Where the results are: the connection options every command takes (`--url`, `--keyprefix`,
 * `--db`, `--master-name`), resolved with the library's own URL parsing (same rules and messages
 * as Celery), into the backend layers of `@effect-celery/redis` / `@effect-celery/sentinel`.
 * The password is kept redacted throughout; what is shown is Celery's `as_uri()` (password `**`).
 */
import * as Options from "@effect/cli/Options"
import type { BackendOptions } from "@effect-celery/core/BackendOptions"
import { ImproperlyConfigured } from "@effect-celery/core/Errors"
import type { ConnectionError } from "@effect-celery/core/Errors"
import * as Keys from "@effect-celery/core/Keys"
import * as RedisBackend from "@effect-celery/redis/RedisBackend"
import * as PyUrl from "@effect-celery/redis/PyUrl"
import * as RedisClient from "@effect-celery/redis/RedisClient"
import type * as RedisConfig from "@effect-celery/redis/RedisConfig"
import * as RedisUrl from "@effect-celery/redis/RedisUrl"
import * as Sentinel from "@effect-celery/sentinel/Sentinel"
import * as SentinelBackend from "@effect-celery/sentinel/SentinelBackend"
import * as SentinelUrl from "@effect-celery/sentinel/SentinelUrl"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

/** The variable read when `--url` is not given (Celery's `result_backend` setting). */
export const URL_ENV = "CELERY_RESULT_BACKEND"

/** The connection options, shared by every command. */
export const options = {
  url: Options.redacted("url").pipe(
    Options.withDescription(
      `Celery result_backend URL: redis://, rediss://, redis+socket:// or sentinel:// (default: $${URL_ENV}). Never echoed.`
    ),
    Options.optional
  ),
  keyprefix: Options.text("keyprefix").pipe(
    Options.withDescription("Celery's global_keyprefix (result_backend_transport_options), if the app sets one."),
    Options.optional
  ),
  db: Options.integer("db").pipe(Options.withDescription("Database number, overriding the URL's."), Options.optional),
  masterName: Options.text("master-name").pipe(
    Options.withDescription("Sentinel master name (transport option master_name); required with sentinel://."),
    Options.optional
  )
}

export interface ConnectionArgs {
  readonly url: Option.Option<Redacted.Redacted>
  readonly keyprefix: Option.Option<string>
  readonly db: Option.Option<number>
  readonly masterName: Option.Option<string>
}

/** What the URL says, as `doctor` prints it (nothing secret). */
export interface Resolved {
  readonly kind: "redis" | "sentinel"
  /** Celery's `as_uri()`: password masked, query dropped. */
  readonly uri: string
  readonly db: number
  /** `host:port`, the socket path, or the sentinels. */
  readonly target: string
  readonly username: string | undefined
  readonly passwordSet: boolean
  /** TLS settings, when the connection is TLS (`ssl_cert_reqs` etc.). */
  readonly tls: RedisConfig.TlsConfig | undefined
  /** The data-node config (redis only), for a TLS probe. */
  readonly config: RedisConfig.RedisConfig | undefined
  readonly masterName: string | undefined
  readonly keys: Keys.KeyLayout
  /** The raw password, only to scrub it from server messages. */
  readonly secret: string | undefined
  /** The backend, consumer and client services. */
  readonly layer: Layer.Layer<RedisBackend.Services, ConnectionError | ImproperlyConfigured>
}

const noUrl = new ImproperlyConfigured({
  message: `No result backend URL: give --url or set ${URL_ENV}`
})

/** The URL from `--url`, else the environment. */
const urlOf = (args: ConnectionArgs): Effect.Effect<Redacted.Redacted, ImproperlyConfigured> =>
  Option.match(args.url, {
    onSome: Effect.succeed,
    onNone: () =>
      Config.option(Config.redacted(URL_ENV)).pipe(
        Effect.orElseSucceed(() => Option.none<Redacted.Redacted>()),
        Effect.flatMap(Option.match({ onNone: () => Effect.fail(noUrl), onSome: Effect.succeed }))
      )
  })

const configMessage = (e: ConfigError.ConfigError): string =>
  e._op === "And" || e._op === "Or"
    ? `${configMessage(e.left)}; ${configMessage(e.right)}`
    : `${e.path.join(".")}: ${e.message}`

/**
 * Celery's `redis_*` settings from the environment (`CELERY_REDIS_BACKEND_USE_SSL`, …, read as the
 * library's `layerConfig()` reads them) when the URL comes from the environment too; none with `--url`.
 */
const urlOptionsOf = (args: ConnectionArgs): Effect.Effect<RedisUrl.UrlOptions, ImproperlyConfigured> =>
  Option.isSome(args.url)
    ? Effect.succeed({})
    : Effect.map(
        Effect.mapError(
          RedisClient.urlConfig,
          (e) => new ImproperlyConfigured({ message: `Invalid environment: ${configMessage(e)}` })
        ),
        (c) => c.options
      )

// `redis://h:p/0` → `redis://h:p/3`; a socket URL shows its path and the db is printed apart.
const withDb = (uri: string, db: number): string => (/\/\d*$/.test(uri) ? uri.replace(/\/\d*$/, `/${db}`) : uri)

const tlsOf = (config: RedisConfig.RedisConfig): RedisConfig.TlsConfig | undefined =>
  config.tls === true ? {} : config.tls === false || config.tls === undefined ? undefined : config.tls

const secretOf = (p: Redacted.Redacted | string | undefined): string | undefined =>
  p === undefined ? undefined : typeof p === "string" ? p : Redacted.value(p)

/**
 * The URL as Celery's `as_uri()` shows it (password masked), for naming the server in errors even
 * when the URL cannot be used; none when there is no URL or it cannot be parsed at all.
 */
export const displayUri = (args: ConnectionArgs): Effect.Effect<string | undefined> =>
  urlOf(args).pipe(
    Effect.map((redacted) => {
      const url = Redacted.value(redacted)
      return url.startsWith("sentinel://")
        ? SentinelUrl.asUri(url)
        : Either.getOrUndefined(PyUrl.attempt(() => PyUrl.maybeSanitizeUrl(url)))
    }),
    Effect.orElseSucceed(() => undefined)
  )

/** Parse the connection options into what to connect to (nothing is connected yet). */
export const resolve = (args: ConnectionArgs): Effect.Effect<Resolved, ImproperlyConfigured> =>
  Effect.gen(function* () {
    const url = Redacted.value(yield* urlOf(args))
    const keyOptions = Option.match(args.keyprefix, {
      onNone: () => ({}),
      onSome: (globalKeyprefix) => ({ keys: { globalKeyprefix } })
    })
    const backendOptions: BackendOptions = { ...keyOptions }
    const keys = Keys.make(backendOptions.keys ?? {})
    const db = Option.getOrUndefined(args.db)
    if (db !== undefined && db < 0)
      return yield* new ImproperlyConfigured({ message: `--db must not be negative (got ${db})` })

    if (url.startsWith("sentinel://")) {
      const masterName = Option.getOrUndefined(args.masterName)
      if (masterName === undefined) {
        return yield* new ImproperlyConfigured({
          message: "sentinel:// needs --master-name (Celery's master_name transport option)"
        })
      }
      const parsed = yield* Sentinel.configFromUrl(url, { masterName })
      const config: Sentinel.Config = db === undefined ? parsed : { ...parsed, db }
      const uri = parsed.uri ?? ""
      return {
        kind: "sentinel",
        uri,
        db: config.db ?? 0,
        target: config.sentinels.map((s) => `${s.host}:${s.port}`).join(","),
        username: config.username,
        passwordSet: config.password !== undefined,
        tls: undefined,
        config: undefined,
        masterName,
        keys,
        secret: secretOf(config.password),
        // An operator's command reports an unreachable server at once rather than after the retry budget.
        layer: SentinelBackend.layer({ ...config, failFast: true }, backendOptions)
      } satisfies Resolved
    }

    const urlOptions = yield* urlOptionsOf(args)
    const parsed = yield* Either.match(RedisUrl.parse(url, urlOptions), {
      onLeft: Effect.fail,
      onRight: Effect.succeed
    })
    const base = RedisUrl.configOf(parsed, urlOptions)
    const config: RedisConfig.RedisConfig = db === undefined ? base : { ...base, db, uri: withDb(parsed.uri, db) }
    return {
      kind: "redis",
      uri: config.uri ?? parsed.uri,
      db: config.db ?? 0,
      target: config.path ?? `${config.host ?? "localhost"}:${config.port ?? 6379}`,
      username: config.username,
      passwordSet: config.password !== undefined,
      tls: tlsOf(config),
      config,
      masterName: undefined,
      keys,
      secret: secretOf(config.password),
      // An operator's command reports an unreachable server at once rather than after the retry budget.
      layer: RedisBackend.layerWithClient(RedisClient.layer({ ...config, failFast: true }), backendOptions)
    } satisfies Resolved
  })
