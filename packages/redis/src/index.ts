export * as RedisClient from "./RedisClient.js"
export * as RedisConfig from "./RedisConfig.js"
export * as RedisUrl from "./RedisUrl.js"
