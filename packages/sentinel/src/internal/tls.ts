/**
 * Celery/redis-py SSL dictionaries (`redis_backend_use_ssl`, the `ssl_*` keys of `sentinel_kwargs`)
 * as `RedisConfig.TlsConfig`, with Celery's `ssl_cert_reqs` validation for the data nodes.
 */
import * as Effect from "effect/Effect"
import { ImproperlyConfigured } from "@effect-celery/core/Errors"
import type { RedisConfig } from "@effect-celery/redis"
import { certReqsOf, E_REDIS_SSL_CERT_REQS_MISSING_INVALID } from "@effect-celery/redis/RedisConfig"

/** The redis-py `SSLConnection` keywords Celery passes through (as in `redis_backend_use_ssl`). */
export interface SslOptions {
  /** `CERT_REQUIRED` | `CERT_OPTIONAL` | `CERT_NONE` (or `required`/`optional`/`none`, or 2/1/0). */
  readonly ssl_cert_reqs?: string | number | undefined
  /** CA bundle (PEM file) to verify the server with, added to the system roots. */
  readonly ssl_ca_certs?: string | undefined
  /** Client certificate (PEM file). */
  readonly ssl_certfile?: string | undefined
  /** Client key (PEM file). */
  readonly ssl_keyfile?: string | undefined
  /** Also check the certificate's host name (redis-py 4.3 default: false). */
  readonly ssl_check_hostname?: boolean | undefined
}

/**
 * The TLS config for an SSL dictionary. `celery` applies Celery's rule for the data nodes
 * (`ssl_cert_reqs` is mandatory); otherwise redis-py's default (`required`) applies, as for the
 * sentinel connections built from `sentinel_kwargs`.
 */
export const toTlsConfig = (
  options: SslOptions,
  celery: boolean
): Effect.Effect<RedisConfig.TlsConfig, ImproperlyConfigured> => {
  const raw = options.ssl_cert_reqs
  const certReqs = raw === undefined ? (celery ? undefined : "required") : certReqsOf(raw)
  if (certReqs === undefined)
    return Effect.fail(new ImproperlyConfigured({ message: E_REDIS_SSL_CERT_REQS_MISSING_INVALID }))
  return Effect.succeed({
    certReqs,
    caFile: options.ssl_ca_certs,
    certFile: options.ssl_certfile,
    keyFile: options.ssl_keyfile,
    checkHostname: options.ssl_check_hostname
  })
}
