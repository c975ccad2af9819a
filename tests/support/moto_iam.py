"""Sets up a moto server started with INITIAL_NO_AUTH_ACTION_COUNT=6, whose first six
requests (these IAM calls) skip authentication and all later ones are checked against IAM:
an `admin` user allowed everything and a `reader` allowed only to get and list. As admin,
creates the buckets `raw` and `marts` and uploads the dataset under raw/shop/. Prints the two
users' keys as JSON: {"admin": [id, secret], "reader": [id, secret]}.

Usage: moto_iam.py DATASET_DIR (with AWS_ENDPOINT_URL and AWS_REGION set)."""
import json
import os
import sys

import boto3

endpoint = dict(endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ.get("AWS_REGION", "us-east-1"))
iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **endpoint)
keys = {}
for user, actions in [("admin", ["*"]), ("reader", ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"])]:
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    keys[user] = [key["AccessKeyId"], key["SecretAccessKey"]]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName="access", PolicyDocument=json.dumps(policy))
s3 = boto3.client("s3", aws_access_key_id=keys["admin"][0], aws_secret_access_key=keys["admin"][1], **endpoint)
for bucket in ["raw", "marts"]:
    s3.create_bucket(Bucket=bucket)
for table in ["customers", "orders", "sessions"]:
    s3.upload_file(f"{sys.argv[1]}/{table}/part-00000.parquet", "raw", f"shop/{table}/part-00000.parquet")
print(json.dumps(keys))
