import { Arg, Ctx, Directive, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { principalOf, type KbqlContext } from '../shared/request-context';
import type { ApiKeyRecord } from '../../ports/api-key-store.port';
import { ApiKeyService, MAX_API_KEY_NAME_CHARS, type CreatedApiKey } from './api-key.service';
import { ApiKey, ApiKeyConnection, ApiKeyRoleEnum, CreateApiKeyPayload } from './api-key.type';

@Resolver(() => ApiKey)
export class ApiKeyResolver {
  constructor(private readonly apiKeyService: ApiKeyService) {}

  @Directive('@auth(requires: ADMIN)')
  @Query(() => ApiKeyConnection, { description: 'The service API keys of your tenant, newest first, revoked and expired ones included.' })
  apiKeys(
    @Arg('first', () => Int, { nullable: true }) first: number | null,
    @Arg('after', () => String, { nullable: true }) after: string | null,
    @Ctx() ctx: KbqlContext,
  ) {
    return this.apiKeyService.list({ first, after }, principalOf(ctx));
  }

  @Directive('@auth(requires: ADMIN)')
  @Mutation(() => CreateApiKeyPayload, {
    description: 'Creates a service API key for your tenant with a role no higher than yours. The secret is returned once.',
  })
  createApiKey(
    @Arg('name', { description: `What the key is for; 1 to ${MAX_API_KEY_NAME_CHARS} characters.` }) name: string,
    @Arg('role', () => ApiKeyRoleEnum) role: ApiKeyRoleEnum,
    @Arg('expiresAt', () => Date, { nullable: true, description: 'Null: never expires.' }) expiresAt: Date | null,
    @Ctx() ctx: KbqlContext,
  ): Promise<CreatedApiKey> {
    return this.apiKeyService.create({ name, role, expiresAt }, principalOf(ctx));
  }

  @Directive('@auth(requires: ADMIN)')
  @Mutation(() => ApiKey, { description: 'Revokes a key of your tenant at once (revoking it again changes nothing).' })
  revokeApiKey(@Arg('id', () => ID) id: string, @Ctx() ctx: KbqlContext): Promise<ApiKeyRecord> {
    return this.apiKeyService.revoke(id, principalOf(ctx));
  }
}
