//! The AWS implementation of [`CloudApi`] (cargo feature `aws`): STS for the identity in
//! effect, EC2 `DescribeInstanceTypes` for the GPU check, `RebootInstances`.

use aws_sdk_ec2::error::DisplayErrorContext;
use aws_sdk_ec2::types::InstanceType;
use futures_util::future::BoxFuture;
use lablink_actors::provisioning::cloud::{CloudApi, CloudError, CloudIdentity};

use crate::config::ProviderConfig;

/// EC2 and STS clients sharing one AWS configuration.
#[derive(Debug, Clone)]
pub struct AwsCloud {
    ec2: aws_sdk_ec2::Client,
    sts: aws_sdk_sts::Client,
}

impl AwsCloud {
    /// Clients from the usual AWS sources, with the region and endpoint the configuration
    /// gives.
    pub async fn new(provider: &ProviderConfig) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        let region = provider
            .aws
            .region
            .clone()
            .or_else(|| provider.terraform.variables.get("region").cloned());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region));
        }
        if let Some(endpoint) = &provider.aws.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        AwsCloud {
            ec2: aws_sdk_ec2::Client::new(&shared),
            sts: aws_sdk_sts::Client::new(&shared),
        }
    }
}

fn cloud_error(err: impl std::error::Error) -> CloudError {
    CloudError(DisplayErrorContext(err).to_string())
}

impl CloudApi for AwsCloud {
    fn identity(&self) -> BoxFuture<'static, Result<CloudIdentity, CloudError>> {
        let sts = self.sts.clone();
        Box::pin(async move {
            let out = sts
                .get_caller_identity()
                .send()
                .await
                .map_err(cloud_error)?;
            Ok(CloudIdentity {
                account: out.account().unwrap_or_default().to_owned(),
                arn: out.arn().unwrap_or_default().to_owned(),
            })
        })
    }

    fn has_nvidia_gpu(&self, instance_type: &str) -> BoxFuture<'static, Result<bool, CloudError>> {
        let (ec2, instance_type) = (self.ec2.clone(), instance_type.to_owned());
        Box::pin(async move {
            let out = ec2
                .describe_instance_types()
                .instance_types(InstanceType::from(instance_type.as_str()))
                .send()
                .await
                .map_err(cloud_error)?;
            let info = out.instance_types().first().ok_or_else(|| {
                CloudError(format!(
                    "AWS does not know the instance type `{instance_type}`"
                ))
            })?;
            Ok(info.gpu_info().is_some_and(|gpus| {
                gpus.gpus().iter().any(|gpu| {
                    gpu.manufacturer()
                        .is_some_and(|m| m.eq_ignore_ascii_case("nvidia"))
                })
            }))
        })
    }

    fn reboot(&self, instance_id: &str) -> BoxFuture<'static, Result<(), CloudError>> {
        let (ec2, instance_id) = (self.ec2.clone(), instance_id.to_owned());
        Box::pin(async move {
            ec2.reboot_instances()
                .instance_ids(instance_id)
                .send()
                .await
                .map_err(cloud_error)?;
            Ok(())
        })
    }
}
