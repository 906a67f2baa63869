export * as RedisClient from "./RedisClient.js"
export * as RedisConfig from "./RedisConfig.js"
