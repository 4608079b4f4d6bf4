import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { connectionOf } from '../../graphql/connection';

/**
 * The roles a key may carry. A separate GraphQL enum from `Role` (the `@auth` argument, a graphql-js enum type-graphql
 * cannot reuse) with the same values.
 */
export enum ApiKeyRoleEnum {
  READER = 'READER',
  WRITER = 'WRITER',
  ADMIN = 'ADMIN',
}
registerEnumType(ApiKeyRoleEnum, { name: 'ApiKeyRole', description: 'The role a service API key acts with (at most its creator’s).' });

@ObjectType({ simpleResolvers: true, description: 'A service API key (never its secret: that is shown once, by createApiKey).' })
export class ApiKey {
  @Field(() => ID, { description: 'The public part of the key: `kbql_<id>_…`.' }) id!: string;
  @Field() name!: string;
  @Field(() => ApiKeyRoleEnum) role!: ApiKeyRoleEnum;
  @Field({ description: 'The tenant the key acts for (its creator’s).' }) tenant!: string;
  @Field() createdAt!: Date;
  @Field(() => Date, { nullable: true, description: 'Last successful authentication (refreshed at most every 30 s per replica).' })
  lastUsedAt!: Date | null;
  @Field(() => Date, { nullable: true, description: 'Null: never expires.' }) expiresAt!: Date | null;
  @Field(() => Date, { nullable: true, description: 'Set once revoked; a revoked key never authenticates again.' }) revokedAt!: Date | null;
}

export const ApiKeyConnection = connectionOf('ApiKey', ApiKey);
export type ApiKeyConnection = InstanceType<typeof ApiKeyConnection>;

@ObjectType({ simpleResolvers: true })
export class CreateApiKeyPayload {
  @Field(() => ApiKey) apiKey!: ApiKey;
  @Field({
    description: 'The key to send as `Authorization: Bearer <secret>` or `X-Api-Key: <secret>`. Shown only here, only once: store it now.',
  })
  secret!: string;
}
