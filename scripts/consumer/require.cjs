// require() of the ESM packages, as a CommonJS consumer on Node >= 20.19 does.
const core = require("@effect-celery/core")
const redis = require("@effect-celery/redis")
const sentinel = require("@effect-celery/sentinel")
const ok = typeof core.TaskState.isReady === "function" && typeof redis.RedisBackend.layerUrl === "function" &&
  typeof sentinel.SentinelBackend.layerUrl === "function"
process.stdout.write(`consumer: require() of core, redis and sentinel ${ok ? "works" : "FAILED"}\n`)
process.exit(ok ? 0 : 1)
